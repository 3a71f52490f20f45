"""A shop's storefront script registrations: one per page scope, at its current URL and with the
served script's integrity (SRI); updated in place when the script changes, removed on request."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlmodel import Session, col

from connectors.base import ShopConnector
from connectors.errors import BadResponse, ConnectorError, Unauthorized
from connectors.platform import Platform
from plugin.runtime import Runtime
from plugin.storage.models import ScriptTag, Shop

__all__ = ["script_url", "place_scripts", "scripts_stale", "remove_scripts"]

log = logging.getLogger("okaeri.install.scripts")
Listing = dict[str, tuple[str, str]]
NOT_REGISTERED = "storefront script not registered: "  # the settings page's note, then the platform's words


def script_url(runtime: Runtime, platform: Platform[Any], event_key: str) -> str:
    """Where a shop's pages load the storefront script from; the key says which shop posts."""
    return f"{runtime.settings.base_url}/storefront/{platform.name}.js?key={event_key}"


def _stored(session: Session, shop: Shop) -> dict[str, ScriptTag]:
    return {t.scope: t for t in session.execute(select(ScriptTag).where(col(ScriptTag.shop_id) == shop.id)).scalars()}


def scripts_stale(session: Session, platform: Platform[Any], shop: Shop) -> bool:
    """True when a scope has no registration or one holding another integrity than the served script's."""
    if platform.script_body() is None or not shop.event_key or not shop.storefront_enabled:
        return False
    stored, integrity = _stored(session, shop), platform.script_integrity()
    return any(scope not in stored or stored[scope].integrity != integrity for scope in platform.script_scopes)


def place_scripts(runtime: Runtime, platform: Platform[Any], connector: ShopConnector, session: Session, shop: Shop) -> None:
    """Give the shop exactly one registration per scope, pointing at its current URL with the current
    integrity. Unauthorized propagates (the caller revokes); any other failure leaves the install
    active with a visible note and the registration stale, so the next sync tries again. Nothing is
    placed while the merchant has the storefront script switched off."""
    if platform.script_body() is None or not shop.storefront_enabled:
        return
    src, ours, integrity = script_url(runtime, platform, shop.event_key), script_url(runtime, platform, ""), platform.script_integrity()
    stored, listing = _stored(session, shop), _Listing(platform, connector)
    try:
        for scope in platform.script_scopes:
            row = stored.get(scope)
            known = row.tag_id if row else (shop.script_tag_id if scope == platform.script_scopes[0] else "")
            tag_id = _placed(platform, connector, known, src, ours, scope, listing)
            row = row or ScriptTag(shop_id=shop.id or 0, scope=scope, tag_id=tag_id, updated_at=runtime.clock.now())
            row.tag_id, row.integrity, row.updated_at = tag_id, integrity, runtime.clock.now()
            session.add(row)
            if scope == platform.script_scopes[0]:
                shop.script_tag_id = tag_id
        if shop.state_message.startswith(NOT_REGISTERED):  # an earlier failure's note no longer holds
            shop.state_message = ""
    except Unauthorized:
        raise
    except ConnectorError as exc:  # the install itself succeeded; the settings page shows this
        shop.state_message = f"{NOT_REGISTERED}{exc}"[:500]
        log.warning("okaeri.install.script-failed", extra={"shop_id": shop.id, "error": str(exc)})
    session.add(shop)


class _Listing:
    """The platform's list of this app's registrations, read once and only when needed."""

    def __init__(self, platform: Platform[Any], connector: ShopConnector) -> None:
        self._platform, self._connector = platform, connector
        self._tags: Listing | None = None

    def ours(self, prefix: str, scope: str) -> list[str]:
        if self._tags is None:
            self._tags = dict(self._platform.list_scripts(self._connector) or {})
        return sorted((i for i, (src, on) in self._tags.items() if src.startswith(prefix) and on in (scope, "")),
                      key=lambda i: (len(i), i))


def _placed(platform: Platform[Any], connector: ShopConnector, known: str, src: str, ours: str, scope: str,
            listing: _Listing) -> str:
    """The id of the one registration of `scope` left pointing at `src`: the stored one updated in
    place, else ours found on the platform (extra copies removed), else a new one."""
    if known:
        try:
            platform.update_script(connector, known, src, scope=scope)
            return known
        except BadResponse as exc:
            if exc.status != 404:  # only a registration that is gone is replaced
                raise
    found = listing.ours(ours, scope)
    if not found:
        return platform.register_script(connector, src, scope=scope)
    keep, *extra = found
    platform.update_script(connector, keep, src, scope=scope)
    for script_id in extra:
        platform.remove_script(connector, script_id)
    return keep


def remove_scripts(platform: Platform[Any], connector: ShopConnector | None, session: Session, shop: Shop) -> None:
    """Remove the shop's registrations where the platform still lets us (a connector with a live
    token), and forget them; a platform that deleted them itself (an uninstall) needs no call."""
    stored: Mapping[str, ScriptTag] = _stored(session, shop)
    if connector is not None:
        for row in stored.values():
            platform.remove_script(connector, row.tag_id)
    session.execute(delete(ScriptTag).where(col(ScriptTag.shop_id) == shop.id))
    shop.script_tag_id = ""
    session.add(shop)
