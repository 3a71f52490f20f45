"""Named leases in the database: one holder at a time until it expires (scheduler, shop ticks)."""
from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from sqlalchemy import delete, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, col

from plugin.clock import Clock
from plugin.storage.models import Lease
from plugin.storage.upsert import table_of

__all__ = ["LeaseHolder", "acquire_lease", "release_lease"]


class LeaseHolder(Protocol):
    """What taking a lease needs (a Runtime has both); storage does not import the runtime."""

    @property
    def clock(self) -> Clock: ...

    @property
    def sessions(self) -> sessionmaker[Session]: ...


def acquire_lease(runtime: LeaseHolder, name: str, holder: str, ttl: timedelta) -> bool:
    """Take or renew a named lease; True when `holder` holds it until now + ttl.

    One statement: insert the lease, or take it over when its holder is this one or it expired
    (the row lock of ON CONFLICT DO UPDATE serialises two takers; the second sees the first's row)."""
    now = runtime.clock.now()
    table = table_of(Lease)
    with runtime.sessions() as session:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(table).values(name=name, holder=holder, expires_at=now + ttl)
        taken = session.execute(stmt.on_conflict_do_update(
            index_elements=[table.c.name], set_={"holder": stmt.excluded.holder, "expires_at": stmt.excluded.expires_at},
            where=or_(table.c.holder == holder, table.c.expires_at < now)).returning(table.c.holder)).first()
        session.commit()
        return taken is not None


def release_lease(runtime: LeaseHolder, name: str, holder: str, session: Session | None = None) -> None:
    """Give a lease back early (only its holder can). Given a `session`, the release is part of
    its transaction (the holder's last write and its release commit together), else committed now."""
    if session is not None:
        session.execute(delete(Lease).where(col(Lease.name) == name, col(Lease.holder) == holder))
        return
    with runtime.sessions() as own:
        release_lease(runtime, name, holder, own)
        own.commit()
