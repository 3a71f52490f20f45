"""A shop's install lifecycle: installing → active → revoked / uninstalled (one place, any platform)."""
from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session, col

from connectors.errors import ConnectorError, Unauthorized
from connectors.platform import ForeignGrant, Grant, InstallRequested, Platform, Uninstalled
from plugin.install.script_tags import place_scripts, remove_scripts, script_url, scripts_stale
from plugin.measurement.thanks_page import match_thanks_page_orders
from plugin.platforms import UnknownPlatform
from plugin.runtime import Runtime
from plugin.storage.models import InstallState, Message, MessageStatus, Shop, WebhookReceipt
from plugin.storage.rollup import count_cancelling
from plugin.storage.upsert import insert_ignore, table_of
from plugin.sync.run import open_connector, run_sync
from plugin.sync.store import Progress
from plugin.sync.tokens import GrantTokens, store_grant

__all__ = ["begin_install", "complete_install", "exchange_launch_token", "install_grant", "claim_once",
           "uninstall", "revoke_install", "revoking_on_401",
           "sync_installed_shop", "switch_storefront", "refresh_scripts", "refresh_all_scripts", "script_url", "callback_url",
           "oauth_start_url", "open_app_url", "find_shop", "REASONS", "REFUSED_PREFIX", "AUTHORISING",
           "UNINSTALLED", "UNPAID", "TOKEN_REFUSED"]

log = logging.getLogger("okaeri.install")

# Why an install is not active (Shop.state_reason); the settings page words each one.
AUTHORISING, UNINSTALLED, UNPAID, TOKEN_REFUSED = "authorising", "uninstalled", "unpaid", "token_refused"
REASONS = (AUTHORISING, UNINSTALLED, UNPAID, TOKEN_REFUSED)
REFUSED_PREFIX = "token refused by platform: "  # then the platform's own words (Shop.state_message)


def oauth_start_url(runtime: Runtime, platform: Platform[Any], account: str) -> str:
    """Where an install hook sends the merchant next."""
    return f"{runtime.settings.base_url}/{platform.name}/oauth/start?account_id={account}"


def callback_url(runtime: Runtime, platform: Platform[Any]) -> str:
    """The OAuth redirect URI registered with the platform (under its public URL when it has its own)."""
    return f"{platform.public_url or runtime.settings.base_url}/{platform.name}/oauth/callback"


def open_app_url(runtime: Runtime, platform: Platform[Any], account: str) -> str:
    """The app's "open" link (settings page, the app store's open-app URL): finishes an install left
    before authorising, or re-authorises one whose token was refused."""
    return f"{runtime.settings.base_url}/{platform.name}/open?account_id={account}"


def begin_install(runtime: Runtime, platform: Platform[Any], hook: InstallRequested) -> Shop:
    """The install hook: create or reopen the shop row; OAuth completes it."""
    now = runtime.clock.now()
    with runtime.sessions() as session:
        shop = _find(session, platform.name, hook.account) or Shop(
            platform=platform.name, external_id=hook.account, created_at=now)
        if shop.state != InstallState.active:
            shop.state, shop.state_message = InstallState.installing, "waiting for the merchant to authorise"
            shop.state_reason = AUTHORISING
        shop.owner_email = shop.owner_email or hook.owner_email
        session.add(shop)
        session.commit()
        return shop


def claim_oauth_state(runtime: Runtime, platform: Platform[Any], state: str) -> bool:
    """True the first time this OAuth `state` comes back: a state (and the cookie binding it) that
    already completed or failed an authorisation cannot carry a second code."""
    return claim_once(runtime, platform, "oauth-state", state)


def claim_once(runtime: Runtime, platform: Platform[Any], kind: str, value: str) -> bool:
    """True the first time `value` of this kind (an OAuth state, a code's digest) is seen for the platform."""
    with runtime.sessions() as session:
        first = insert_ignore(session, table_of(WebhookReceipt), [{
            "platform": platform.name, "delivery_key": f"{kind}:{value}"[:255], "topic": kind,
            "received_at": runtime.clock.now()}], ["platform", "delivery_key"])
        session.commit()
    return bool(first)


def complete_install(runtime: Runtime, platform: Platform[Any], account: str, code: str) -> Shop:
    """OAuth callback: exchange the code, check the account, store the token, start the first sync.

    `account` "" (the app opened without naming its shop): the token's own account, which must
    have an install that is not uninstalled.

    Raises:
      ForeignGrant: If the code was for another account; its token is revoked where the platform
        allows, and never stored.
    """
    grant = platform.exchange_code_for(account, code, callback_url(runtime, platform), runtime.clock.now())
    return install_grant(runtime, platform, account, grant)


def exchange_launch_token(runtime: Runtime, platform: Platform[Any], account: str, id_token: str) -> Shop:
    """A platform-managed install opened in the platform's admin: the session token becomes the
    shop's offline token (token exchange), stored as an OAuth grant is."""
    grant = platform.exchange_id_token(account, id_token, runtime.clock.now())
    return install_grant(runtime, platform, account, grant)


def install_grant(runtime: Runtime, platform: Platform[Any], account: str, grant: Grant) -> Shop:
    """Check a new grant's shop, store its tokens (encrypted), activate the install, start the first sync.

    A platform-managed install has no install hook: its shop row is made here, once a grant is in
    hand, so a refused launch or callback leaves nothing behind."""
    connector = platform.connect(account, GrantTokens(grant), runtime.clock.now())
    try:
        info, address = connector.shop_with_address()
        try:
            platform.check_grant(info, account or info.external_id)
        except ForeignGrant as exc:
            _discard_foreign(runtime, platform, grant.access_token, exc)
            raise
        with runtime.sessions() as session:
            shop = _find(session, platform.name, account or info.external_id)
            if shop is None and platform.managed_install and account:
                shop = Shop(platform=platform.name, external_id=account, created_at=runtime.clock.now())
            if shop is None or (not account and shop.state == InstallState.uninstalled):
                raise ConnectorError(f"no install started for {account or info.external_id}", platform=platform.name,
                                     status=400)
            shop.name, shop.domain, shop.sender_address = info.name, info.domain, address
            shop.owner_email = info.owner_email or shop.owner_email
            store_grant(runtime, shop, grant)
            shop.scopes, shop.state, shop.state_message, shop.state_reason = grant.scope, InstallState.active, "", ""
            shop.installed_at, shop.uninstalled_at = runtime.clock.now(), None
            shop.event_key = shop.event_key or secrets.token_urlsafe(24)
            _remember_point_source(platform, shop)
            session.add(shop)
            session.flush()  # the shop's id for its script registrations
            place_scripts(runtime, platform, connector, session, shop)
            session.commit()
    finally:
        connector.close()
    runtime.tasks.sync_shop(shop.id or 0, full=True)
    log.info("okaeri.install.active", extra={"shop_id": shop.id, "platform": platform.name})
    return shop


def _discard_foreign(runtime: Runtime, platform: Platform[Any], token: str, exc: ForeignGrant) -> None:
    """Drop a token issued for another account: revoke it where the platform can, unless it is the
    live token of that account's own install (platforms such as Shopify hand the same token out again)."""
    with runtime.sessions() as session:
        other = _find(session, platform.name, exc.granted)
    if other is not None and other.access_token_encrypted and \
            runtime.cipher.decrypt(other.access_token_encrypted) == token:
        revoked = False
    else:
        try:
            revoked = platform.revoke_token(token)
        except ConnectorError as failure:  # still refused and never stored; the log says so
            log.warning("okaeri.install.revoke-failed", extra={"platform": platform.name, "error": str(failure)})
            revoked = False
    log.info("okaeri.install.foreign-grant", extra={
        "platform": platform.name, "expected": exc.expected, "granted": exc.granted, "revoked": revoked})


def uninstall(runtime: Runtime, platform: Platform[Any], hook: Uninstalled) -> bool:
    """Stop all sending at once and drop the token; every repeat of the same hook (ColorMe retries
    up to 19 times) is acknowledged and changes nothing. Returns whether this delivery changed the shop."""
    now = runtime.clock.now()
    with runtime.sessions() as session:
        first = insert_ignore(session, table_of(WebhookReceipt), [{
            "platform": platform.name, "delivery_key": hook.delivery_key,
            "topic": "uninstall", "received_at": now}], ["platform", "delivery_key"])
        shop = _find(session, platform.name, hook.account)
        if not first or shop is None:
            session.commit()
            return False
        reason = UNPAID if hook.reason == "by_unpaid" else UNINSTALLED
        _stop(session, shop, InstallState.uninstalled, reason, f"uninstalled ({hook.reason})", now)
        shop.uninstalled_at = now
        # The platform deletes the app's script tags on uninstall (ColorMe does): none is left to update.
        remove_scripts(platform, None, session, shop)
        session.commit()
        log.info("okaeri.install.uninstalled", extra={"shop_id": shop.id, "reason": hook.reason})
        return True


def revoke_install(runtime: Runtime, shop_id: int, detail: str = "") -> bool:
    """The platform refused the shop's token (a 401 from any call): stop exactly as an uninstall
    does — pending messages cancelled, the token dropped — and keep why for the settings page.
    The script registrations are kept on record: the token cannot remove them, and an
    authorisation later updates them in place. Returns whether anything changed."""
    with runtime.sessions() as session:
        shop = session.get(Shop, shop_id)
        if shop is None or shop.state == InstallState.uninstalled:
            return False
        changed = shop.state != InstallState.revoked or bool(shop.access_token_encrypted)
        _stop(session, shop, InstallState.revoked, TOKEN_REFUSED, f"{REFUSED_PREFIX}{detail}"[:500],
              runtime.clock.now())
        session.commit()
    if changed:
        log.warning("okaeri.install.revoked", extra={"shop_id": shop_id, "detail": detail[:200]})
    return changed


def _stop(session: Session, shop: Shop, state: InstallState, reason: str, message: str, now: datetime) -> None:
    """The one way an install stops: state and why, no token, nothing left pending."""
    shop.state, shop.state_reason, shop.state_message = state, reason, message
    shop.access_token_encrypted = shop.refresh_token_encrypted = ""
    shop.token_expires_at = shop.refresh_expires_at = None
    session.add(shop)
    count_cancelling(session, f"shop {state.value}", col(Message.shop_id) == shop.id)  # the dashboard's rollup
    session.execute(
        update(Message).where(col(Message.shop_id) == shop.id, col(Message.status) == MessageStatus.pending)
        .values(status=MessageStatus.cancelled, last_error=f"shop {state.value}"))


@contextmanager
def revoking_on_401(runtime: Runtime, shop_id: int) -> Iterator[None]:
    """Run a call made with the shop's stored token; a 401 revokes the install, then propagates."""
    try:
        yield
    except Unauthorized as exc:
        revoke_install(runtime, shop_id, str(exc))
        raise


def sync_installed_shop(runtime: Runtime, shop_id: int, *, full: bool = False,
                        progress: Progress | None = None) -> dict[str, int]:
    """Sync an active shop as a job does: a 401 revokes it; after a sync, the script registrations
    are brought to the served script's integrity and thanks-page orders matched to synced ones."""
    with revoking_on_401(runtime, shop_id):
        counts = run_sync(runtime, shop_id, full=full, progress=progress)
    refresh_scripts(runtime, shop_id)
    with runtime.sessions() as session:
        shop = session.get(Shop, shop_id)
        if shop is not None and shop.platform in runtime.platforms:
            _remember_point_source(runtime.platforms.get(shop.platform), shop)
        match_thanks_page_orders(session, shop_id, runtime.clock.now())
        session.commit()
    return counts


def _remember_point_source(platform: Platform[Any], shop: Shop) -> None:
    """What the expiry labels name: the platform, and whether its data carries the dates."""
    shop.points_source, shop.points_expiry_from_platform = platform.title, platform.points_expire_after is None


def refresh_scripts(runtime: Runtime, shop_id: int) -> bool:
    """Update the shop's script registrations in place when the served script changed (a new
    hash, e.g. after a deploy) or a scope has none; returns whether the platform was called."""
    with runtime.sessions() as session:
        shop = session.get(Shop, shop_id)
        if shop is None or shop.state != InstallState.active:
            return False
        platform = runtime.platforms.get(shop.platform)
        if not scripts_stale(session, platform, shop):
            return False
        connector = open_connector(runtime, shop)
        try:
            with revoking_on_401(runtime, shop_id):
                place_scripts(runtime, platform, connector, session, shop)
            session.commit()
        except Unauthorized:
            return True
        finally:
            connector.close()
    return True


def switch_storefront(runtime: Runtime, shop_id: int, enabled: bool) -> None:
    """The merchant's storefront switch: off removes the shop's script registrations from the
    platform (its token still works) and ignores its events; on places them again."""
    with runtime.sessions() as session:
        shop = session.get(Shop, shop_id)
        if shop is None or shop.state != InstallState.active or shop.storefront_enabled == enabled:
            return
        platform = runtime.platforms.get(shop.platform)
        shop.storefront_enabled = enabled
        connector = open_connector(runtime, shop)
        try:
            with revoking_on_401(runtime, shop_id):
                if enabled:
                    place_scripts(runtime, platform, connector, session, shop)
                else:
                    remove_scripts(platform, connector, session, shop)
            session.commit()
        finally:
            connector.close()


def refresh_all_scripts(runtime: Runtime) -> int:
    """At startup: bring every active shop's registrations to the served script; returns how many changed."""
    with runtime.sessions() as session:
        shop_ids = list(session.execute(select(col(Shop.id)).where(col(Shop.state) == InstallState.active)).scalars())
    changed = 0
    for shop_id in shop_ids:
        try:
            changed += refresh_scripts(runtime, shop_id or 0)
        except (ConnectorError, UnknownPlatform) as exc:  # the next sync tries again
            log.warning("okaeri.install.script-refresh-failed", extra={"shop_id": shop_id, "error": str(exc)})
    return changed


def find_shop(session: Session, platform: str, external_id: str) -> Shop | None:
    """A platform's shop by its account id, in any state."""
    return _find(session, platform, external_id)


def _find(session: Session, platform: str, external_id: str) -> Shop | None:
    return session.execute(
        select(Shop).where(col(Shop.platform) == platform, col(Shop.external_id) == external_id)
    ).scalar_one_or_none()
