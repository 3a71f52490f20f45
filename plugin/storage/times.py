"""Times are stored in UTC; SQLite hands them back without a zone."""
from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utc"]


def utc(moment: datetime) -> datetime:
    """`moment` as an aware UTC time (a naive one read from SQLite is UTC already)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
