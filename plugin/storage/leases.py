"""Named leases in the database: one holder at a time until it expires (scheduler, shop ticks)."""
from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, or_, update

from plugin.storage.models import Lease
from plugin.storage.upsert import insert_ignore

if TYPE_CHECKING:
    from plugin.runtime import Runtime

__all__ = ["acquire_lease", "release_lease"]


def acquire_lease(runtime: Runtime, name: str, holder: str, ttl: timedelta) -> bool:
    """Take or renew a named lease; True when `holder` holds it until now + ttl."""
    now = runtime.clock.now()
    with runtime.sessions() as session:
        insert_ignore(session, Lease.__table__, [{"name": name, "holder": holder, "expires_at": now + ttl}],  # type: ignore[arg-type]
                      ["name"])
        result = session.execute(
            update(Lease)
            .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at < now))  # type: ignore[arg-type,operator]
            .values(holder=holder, expires_at=now + ttl)
        )
        session.commit()
        return result.rowcount == 1  # type: ignore[attr-defined]


def release_lease(runtime: Runtime, name: str, holder: str) -> None:
    """Give a lease back early (only its holder can)."""
    with runtime.sessions() as session:
        session.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))  # type: ignore[arg-type]
        session.commit()
