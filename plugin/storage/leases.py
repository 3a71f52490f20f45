"""Named leases in the database: one holder at a time until it expires (scheduler, shop ticks)."""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, delete, or_, update
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, col

from plugin.clock import Clock
from plugin.storage.models import Lease
from plugin.storage.upsert import insert_ignore, table_of

__all__ = ["LeaseHolder", "acquire_lease", "release_lease"]


class LeaseHolder(Protocol):
    """What taking a lease needs (a Runtime has both); storage does not import the runtime."""

    @property
    def clock(self) -> Clock: ...

    @property
    def sessions(self) -> sessionmaker[Session]: ...


def acquire_lease(runtime: LeaseHolder, name: str, holder: str, ttl: timedelta) -> bool:
    """Take or renew a named lease; True when `holder` holds it until now + ttl."""
    now = runtime.clock.now()
    with runtime.sessions() as session:
        insert_ignore(session, table_of(Lease), [{"name": name, "holder": holder, "expires_at": now + ttl}], ["name"])
        result = cast("CursorResult[Any]", session.execute(
            update(Lease)
            .where(col(Lease.name) == name, or_(col(Lease.holder) == holder, col(Lease.expires_at) < now))
            .values(holder=holder, expires_at=now + ttl)
        ))
        session.commit()
        return result.rowcount == 1


def release_lease(runtime: LeaseHolder, name: str, holder: str) -> None:
    """Give a lease back early (only its holder can)."""
    with runtime.sessions() as session:
        session.execute(delete(Lease).where(col(Lease.name) == name, col(Lease.holder) == holder))
        session.commit()
