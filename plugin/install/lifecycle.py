"""A shop's install lifecycle: installing → active → revoked / uninstalled (one place, any platform)."""
from __future__ import annotations

import logging
import secrets
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session, col

from connectors.base import ShopConnector
from connectors.errors import BadResponse, ConnectorError
from connectors.platform import ForeignGrant, InstallRequested, Platform, Uninstalled
from plugin.runtime import Runtime
from plugin.storage.models import InstallState, Message, MessageStatus, Shop, WebhookReceipt
from plugin.storage.rollup import count_cancelling
from plugin.storage.upsert import insert_ignore, table_of

__all__ = ["begin_install", "complete_install", "uninstall", "script_url", "callback_url", "oauth_start_url"]

log = logging.getLogger("okaeri.install")


def oauth_start_url(runtime: Runtime, platform: Platform[Any], account: str) -> str:
    """Where an install hook sends the merchant next."""
    return f"{runtime.settings.base_url}/{platform.name}/oauth/start?account_id={account}"


def callback_url(runtime: Runtime, platform: Platform[Any]) -> str:
    """The OAuth redirect URI registered with the platform."""
    return f"{runtime.settings.base_url}/{platform.name}/oauth/callback"


def script_url(runtime: Runtime, platform: Platform[Any], event_key: str) -> str:
    """Where a shop's pages load the storefront script from; the key says which shop posts."""
    return f"{runtime.settings.base_url}/storefront/{platform.name}.js?key={event_key}"


def begin_install(runtime: Runtime, platform: Platform[Any], hook: InstallRequested) -> Shop:
    """The install hook: create or reopen the shop row; OAuth completes it."""
    now = runtime.clock.now()
    with runtime.sessions() as session:
        shop = _find(session, platform.name, hook.account) or Shop(
            platform=platform.name, external_id=hook.account, created_at=now)
        if shop.state != InstallState.active:
            shop.state, shop.state_message = InstallState.installing, "waiting for the merchant to authorise"
        shop.owner_email = shop.owner_email or hook.owner_email
        session.add(shop)
        session.commit()
        return shop


def claim_oauth_state(runtime: Runtime, platform: Platform[Any], state: str) -> bool:
    """True the first time this OAuth `state` comes back: a state (and the cookie binding it) that
    already completed or failed an authorisation cannot carry a second code."""
    with runtime.sessions() as session:
        first = insert_ignore(session, table_of(WebhookReceipt), [{
            "platform": platform.name, "delivery_key": f"oauth-state:{state}", "topic": "oauth-state",
            "received_at": runtime.clock.now()}], ["platform", "delivery_key"])
        session.commit()
    return bool(first)


def complete_install(runtime: Runtime, platform: Platform[Any], account: str, code: str) -> Shop:
    """OAuth callback: exchange the code, check the account, store the token, start the first sync.

    Raises:
      ForeignGrant: If the code was for another account; its token is revoked where the platform
        allows, and never stored.
    """
    grant = platform.exchange_code(code, callback_url(runtime, platform))
    connector = platform.open_connector(grant.access_token, runtime.clock.now())
    try:
        info, address = connector.shop_with_address()
        try:
            platform.check_grant(info, account)
        except ForeignGrant as exc:
            _discard_foreign(runtime, platform, grant.access_token, exc)
            raise
        with runtime.sessions() as session:
            shop = _find(session, platform.name, account)
            if shop is None:
                raise ConnectorError(f"no install started for {account}", platform=platform.name)
            shop.name, shop.domain, shop.sender_address = info.name, info.domain, address
            shop.owner_email = info.owner_email or shop.owner_email
            shop.access_token_encrypted = runtime.cipher.encrypt(grant.access_token)
            shop.scopes, shop.state, shop.state_message = grant.scope, InstallState.active, ""
            shop.installed_at, shop.uninstalled_at = runtime.clock.now(), None
            shop.event_key = shop.event_key or secrets.token_urlsafe(24)
            _place_script(runtime, platform, connector, shop)
            session.add(shop)
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
    """Stop all sending at once and drop the token; repeats of the same hook are no-ops."""
    now = runtime.clock.now()
    with runtime.sessions() as session:
        first = insert_ignore(session, table_of(WebhookReceipt), [{
            "platform": platform.name, "delivery_key": hook.delivery_key,
            "topic": "uninstall", "received_at": now}], ["platform", "delivery_key"])
        shop = _find(session, platform.name, hook.account)
        if not first or shop is None:
            session.commit()
            return False
        shop.state, shop.state_message = InstallState.uninstalled, f"uninstalled ({hook.reason})"
        # The platform deletes the app's script tags on uninstall (ColorMe does): none is left to update.
        shop.access_token_encrypted, shop.uninstalled_at, shop.script_tag_id = "", now, ""
        session.add(shop)
        count_cancelling(session, "shop uninstalled", col(Message.shop_id) == shop.id)
        session.execute(
            update(Message).where(col(Message.shop_id) == shop.id, col(Message.status) == MessageStatus.pending)
            .values(status=MessageStatus.cancelled, last_error="shop uninstalled"))
        session.commit()
        return True


def _place_script(runtime: Runtime, platform: Platform[Any], connector: ShopConnector, shop: Shop) -> None:
    """Give the shop exactly one storefront script registration, pointing at its current URL; a
    failure leaves the install active with a visible note."""
    if platform.script_body() is None:
        return
    src = script_url(runtime, platform, shop.event_key)
    try:
        shop.script_tag_id = _placed(platform, connector, shop.script_tag_id, src,
                                     ours=script_url(runtime, platform, ""))
    except ConnectorError as exc:  # the install itself succeeded; the settings page shows this
        shop.state_message = f"storefront script not registered: {exc}"


def _placed(platform: Platform[Any], connector: ShopConnector, known: str, src: str, ours: str) -> str:
    """The id of the one registration left pointing at `src`: the stored one updated in place, else
    ours found on the platform (extra copies from earlier authorisations removed), else a new one."""
    if known:
        try:
            platform.update_script(connector, known, src)
            return known
        except BadResponse as exc:
            if exc.status != 404:  # only a registration that is gone is replaced
                raise
    found = sorted((i for i, s in (platform.list_scripts(connector) or {}).items() if s.startswith(ours)),
                   key=lambda i: (len(i), i))
    if not found:
        return platform.register_script(connector, src)
    keep, *extra = found
    platform.update_script(connector, keep, src)
    for script_id in extra:
        platform.remove_script(connector, script_id)
    return keep


def _find(session: Session, platform: str, external_id: str) -> Shop | None:
    return session.execute(
        select(Shop).where(col(Shop.platform) == platform, col(Shop.external_id) == external_id)
    ).scalar_one_or_none()
