"""A shop's install lifecycle: installing → active → revoked / uninstalled (one place)."""
from __future__ import annotations

import hashlib
import logging
import secrets
from base64 import b64encode
from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlmodel import Session

from connectors.colorme import oauth
from connectors.colorme.client import ColorMeClient
from connectors.colorme.sync import ColorMeConnector
from connectors.colorme.webhooks import InstallHook, UninstallHook
from connectors.errors import ConnectorError
from plugin.storage.models import InstallState, Message, MessageStatus, Shop, WebhookReceipt
from plugin.storage.upsert import insert_ignore

if TYPE_CHECKING:
    from plugin.runtime import Runtime

__all__ = ["begin_colorme_install", "complete_colorme_install", "uninstall_colorme", "storefront_script"]

log = logging.getLogger("okaeri.install")


def begin_colorme_install(runtime: Runtime, hook: InstallHook) -> Shop:
    """The install hook: create or reopen the shop row; OAuth completes it."""
    now = runtime.clock.now()
    with runtime.sessions() as session:
        shop = _find(session, "colorme", hook.account_id) or Shop(
            platform="colorme", external_id=hook.account_id, created_at=now)
        if shop.state != InstallState.active:
            shop.state, shop.state_message = InstallState.installing, "waiting for the merchant to authorise"
        shop.owner_email = shop.owner_email or hook.owner_email
        session.add(shop)
        session.commit()
        return shop


def complete_colorme_install(runtime: Runtime, account_id: str, code: str, redirect_uri: str) -> Shop:
    """OAuth callback: exchange the code, check the account, store the token, start the first sync."""
    settings = runtime.settings
    grant = oauth.exchange_code(settings.colorme_api_base, settings.colorme_client_id,
                                settings.colorme_client_secret, code, redirect_uri)
    client = ColorMeClient(settings.colorme_api_base, grant.access_token,
                           requests_per_minute=settings.colorme_requests_per_minute)
    try:
        connector = ColorMeConnector(client, runtime.clock.now())
        info, address = connector.shop_with_address()
        if info.external_id != account_id:
            raise ConnectorError(f"token belongs to {info.external_id}, not {account_id}", platform="colorme")
        with runtime.sessions() as session:
            shop = _find(session, "colorme", account_id)
            if shop is None:
                raise ConnectorError(f"no install started for {account_id}", platform="colorme")
            shop.name, shop.domain, shop.sender_address = info.name, info.domain, address
            shop.owner_email = info.owner_email or shop.owner_email
            shop.access_token_encrypted = runtime.cipher.encrypt(grant.access_token)
            shop.scopes, shop.state, shop.state_message = grant.scope, InstallState.active, ""
            shop.installed_at, shop.uninstalled_at = runtime.clock.now(), None
            shop.event_key = shop.event_key or secrets.token_urlsafe(24)
            _register_script_tag(runtime, client, shop)
            session.add(shop)
            session.commit()
    finally:
        client.close()
    runtime.tasks.sync_shop(shop.id, full=True)
    log.info("okaeri.install.active", extra={"shop_id": shop.id})
    return shop


def uninstall_colorme(runtime: Runtime, hook: UninstallHook) -> bool:
    """Stop all sending at once and drop the token; repeats of the same hook are no-ops."""
    now = runtime.clock.now()
    with runtime.sessions() as session:
        first = insert_ignore(session, WebhookReceipt.__table__, [{  # type: ignore[arg-type]
            "platform": "colorme", "delivery_key": f"uninstall:{hook.account_id}:{hook.uninstalled_at}",
            "topic": "uninstall", "received_at": now}], ["platform", "delivery_key"])
        shop = _find(session, "colorme", hook.account_id)
        if not first or shop is None:
            session.commit()
            return False
        shop.state, shop.state_message = InstallState.uninstalled, f"uninstalled ({hook.reason})"
        shop.access_token_encrypted, shop.uninstalled_at = "", now
        session.add(shop)
        session.execute(
            update(Message).where(Message.shop_id == shop.id, Message.status == MessageStatus.pending)  # type: ignore[arg-type]
            .values(status=MessageStatus.cancelled, last_error="shop uninstalled"))
        session.commit()
        return True


def storefront_script() -> str:
    """The storefront tracking script served to shops (static file)."""
    return resources.files("connectors.colorme").joinpath("storefront.js").read_text(encoding="utf-8")


def _register_script_tag(runtime: Runtime, client: ColorMeClient, shop: Shop) -> None:
    """Install the storefront script; a failure leaves the install active with a visible note."""
    script = storefront_script().encode()
    integrity = "sha384-" + b64encode(hashlib.sha384(script).digest()).decode()
    src = f"{runtime.settings.base_url}/storefront/colorme.js?key={shop.event_key}"
    try:
        client.post("/appstore/v1/script_tags.json", {
            "script_tag": {"src": src, "display_scope": "shop", "integrity": integrity}})
    except ConnectorError as exc:  # the install itself succeeded; the settings page shows this
        shop.state_message = f"storefront script not registered: {exc}"


def _find(session: Session, platform: str, external_id: str) -> Shop | None:
    return session.execute(
        select(Shop).where(Shop.platform == platform, Shop.external_id == external_id)
    ).scalar_one_or_none()
