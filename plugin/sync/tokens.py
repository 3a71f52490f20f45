"""A shop's stored platform token as its connector uses it: refreshed before it expires and on a 401.

Platforms whose tokens expire (an hour) hand out a refresh token with each access token, and
replace it on every use: a refresh token used twice may burn the shop's access. So a refresh is
claimed first with one conditional UPDATE (a compare-and-swap on the stored refresh token and
on no live claim): of any number of workers and processes, on SQLite or PostgreSQL alike, one
wins the claim and calls the platform; the others wait until the row holds the new tokens and use
them. The winner stores access token, refresh token and expiries in one UPDATE that only lands
while it still holds the claim on the refresh token it used.
"""
from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlmodel import col

from connectors.errors import ProviderDown, Unauthorized
from connectors.platform import Grant, Platform
from plugin.runtime import Runtime
from plugin.storage.models import Shop

__all__ = ["StoredTokens", "GrantTokens", "store_grant", "REFRESH_BEFORE", "CLAIM_TTL"]

log = logging.getLogger("okaeri.tokens")

REFRESH_BEFORE = timedelta(minutes=5)  # a job that starts now never meets a dead token mid-way
CLAIM_TTL = timedelta(seconds=90)  # longer than the platform call with its retries can take
WAIT_STEP = 0.05  # seconds between looks at a refresh another worker is making


def store_grant(runtime: Runtime, shop: Shop, grant: Grant) -> None:
    """Put a new grant's tokens on the shop row (encrypted); the caller commits."""
    shop.access_token_encrypted = runtime.cipher.encrypt(grant.access_token)
    shop.refresh_token_encrypted = runtime.cipher.encrypt(grant.refresh_token) if grant.refresh_token else ""
    shop.token_expires_at, shop.refresh_expires_at = grant.expires_at, grant.refresh_expires_at
    shop.token_refresh_holder, shop.token_refresh_until = "", None


class GrantTokens:
    """A grant not stored yet (an install checking its shop): its access token, no refresh."""

    def __init__(self, grant: Grant) -> None:
        self._token = grant.access_token

    def current(self) -> str:
        return self._token

    def rejected(self, token: str) -> str:
        raise Unauthorized("the new token was refused", status=401)


class StoredTokens:
    """One shop's stored tokens (`connectors.platform.TokenSource`), kept in memory between calls."""

    def __init__(self, runtime: Runtime, platform: Platform[Any], shop_id: int, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.runtime, self.platform, self.shop_id = runtime, platform, shop_id
        self._sleep = sleep
        self._token, self._expires_at = "", cast(datetime | None, None)
        self.refreshes = 0  # refreshes this source made itself (tests, logs)

    def current(self) -> str:
        now = self.runtime.clock.now()
        if self._token and (self._expires_at is None or now < self._expires_at - REFRESH_BEFORE):
            return self._token
        row = self._read()
        if row.token_expires_at is not None and now >= row.token_expires_at - REFRESH_BEFORE:
            return self._refresh(row.refresh_token_encrypted)
        return self._keep(row)

    def rejected(self, token: str) -> str:
        row = self._read()
        stored = self._plain(row.access_token_encrypted)
        if stored and stored != token:  # another worker refreshed meanwhile
            return self._keep(row)
        if not row.refresh_token_encrypted:
            raise Unauthorized("the platform refused the token and there is none to refresh it", status=401)
        return self._refresh(row.refresh_token_encrypted)

    # ------------------------------------------------------------------------------------

    def _refresh(self, seen: str) -> str:
        """Renew the token whose refresh token is stored as `seen`, or wait for who is renewing it."""
        if not seen:
            raise Unauthorized("the token expired and there is none to refresh it", status=401)
        holder = secrets.token_hex(16)
        deadline = time.monotonic() + CLAIM_TTL.total_seconds() * 2
        while True:
            if self._claim(seen, holder):
                return self._renew(seen, holder)
            row = self._read()
            if row.refresh_token_encrypted != seen:  # renewed by the claim's holder
                return self._keep(row)
            if time.monotonic() > deadline:
                raise ProviderDown("another worker's token refresh did not finish", status=503)
            self._sleep(WAIT_STEP)

    def _claim(self, seen: str, holder: str) -> bool:
        now = self.runtime.clock.now()
        with self.runtime.sessions() as session:
            result = cast("CursorResult[Any]", session.execute(
                update(Shop).where(col(Shop.id) == self.shop_id, col(Shop.refresh_token_encrypted) == seen,
                                   or_(col(Shop.token_refresh_until).is_(None), col(Shop.token_refresh_until) < now))
                .values(token_refresh_holder=holder, token_refresh_until=now + CLAIM_TTL)))
            session.commit()
        return result.rowcount == 1

    def _renew(self, seen: str, holder: str) -> str:
        row = self._read()
        held = Grant(access_token=self._plain(row.access_token_encrypted), scope=row.scopes,
                     expires_at=row.token_expires_at, refresh_token=self._plain(seen),
                     refresh_expires_at=row.refresh_expires_at)
        try:
            fresh = self.platform.refresh_grant(row.external_id, held, self.runtime.clock.now())
        except Exception:
            self._release(holder)
            raise
        cipher = self.runtime.cipher
        with self.runtime.sessions() as session:
            result = cast("CursorResult[Any]", session.execute(
                update(Shop).where(col(Shop.id) == self.shop_id, col(Shop.token_refresh_holder) == holder,
                                   col(Shop.refresh_token_encrypted) == seen)
                .values(access_token_encrypted=cipher.encrypt(fresh.access_token),
                        refresh_token_encrypted=cipher.encrypt(fresh.refresh_token) if fresh.refresh_token else "",
                        token_expires_at=fresh.expires_at, refresh_expires_at=fresh.refresh_expires_at,
                        token_refresh_holder="", token_refresh_until=None)))
            session.commit()
        if result.rowcount != 1:  # the shop was uninstalled (tokens dropped) while we refreshed
            raise Unauthorized("the install stopped while its token was refreshed", status=401)
        self.refreshes += 1
        log.info("okaeri.tokens.refreshed", extra={"shop_id": self.shop_id, "expires_at": str(fresh.expires_at)})
        self._token, self._expires_at = fresh.access_token, fresh.expires_at
        return fresh.access_token

    def _release(self, holder: str) -> None:
        with self.runtime.sessions() as session:
            session.execute(update(Shop).where(col(Shop.id) == self.shop_id, col(Shop.token_refresh_holder) == holder)
                            .values(token_refresh_holder="", token_refresh_until=None))
            session.commit()

    def _read(self) -> Shop:
        with self.runtime.sessions() as session:
            row = session.execute(select(Shop).where(col(Shop.id) == self.shop_id)).scalar_one_or_none()
            if row is None or not row.access_token_encrypted:
                raise Unauthorized("the shop holds no token (uninstalled or revoked)", status=401)
            session.expunge(row)
            return row

    def _keep(self, row: Shop) -> str:
        self._token, self._expires_at = self._plain(row.access_token_encrypted), row.token_expires_at
        return self._token

    def _plain(self, ciphertext: str) -> str:
        return self.runtime.cipher.decrypt(ciphertext) if ciphertext else ""
