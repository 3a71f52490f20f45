"""The ColorMe descriptor: everything the generic code asks of ColorMe Shop."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from connectors.base import ShopConnector
from connectors.colorme import oauth, storefront, webhooks
from connectors.colorme.client import ColorMeClient
from connectors.colorme.config import ColorMeConfig
from connectors.colorme.sync import ColorMeConnector
from connectors.platform import Grant, HookHandler, InstallRequested, Platform, Uninstalled
from connectors.storefront import StorefrontEvent

__all__ = ["ColorMePlatform"]


class ColorMePlatform(Platform[ColorMeConfig]):
    """ColorMe Shop: App-store hooks, OAuth without refresh, polling sync, a script tag."""

    name = "colorme"
    title = "ColorMe"
    config_class = ColorMeConfig
    # ColorMe's API gives a balance but no expiry date; its default rule is a year after the last order.
    points_expire_after = timedelta(days=365)
    script_scopes = storefront.DISPLAY_SCOPES
    app_store_url = "https://app.shop-pro.jp/"

    @property
    def hooks(self) -> Mapping[str, HookHandler]:
        return {"install": self._install_hook, "uninstall": self._uninstall_hook}

    def _install_hook(self, body: bytes, headers: Mapping[str, str]) -> InstallRequested:
        return webhooks.parse_install(self.config.webhook_secret, body, headers.get(webhooks.SIGNATURE_HEADER))

    def _uninstall_hook(self, body: bytes, headers: Mapping[str, str]) -> Uninstalled:
        return webhooks.parse_uninstall(self.config.webhook_secret, body, headers.get(webhooks.SIGNATURE_HEADER))

    def check_account(self, account: str) -> None:
        webhooks.check_account(account)

    def authorize_url(self, account: str, redirect_uri: str, state: str) -> str:
        return oauth.authorize_url(self.config.api_base, self.config.client_id, redirect_uri, state)

    def exchange_code(self, code: str, redirect_uri: str) -> Grant:
        config = self.config
        return oauth.exchange_code(config.api_base, config.client_id, config.client_secret, code, redirect_uri)

    def open_connector(self, access_token: str, now: datetime) -> ColorMeConnector:
        config = self.config  # one budget per token for every process sharing config.rate_limit_store
        client = ColorMeClient(config.api_base, access_token, requests_per_minute=config.requests_per_minute,
                               window=config.rate_window_seconds, budget_store=config.rate_limit_store,
                               namespace=config.redis_namespace)
        return ColorMeConnector(client, now)

    def script_body(self) -> str:
        return storefront.script_body()

    def script_integrity(self) -> str:
        return storefront.script_integrity()

    def register_script(self, connector: ShopConnector, src: str, scope: str = "shop") -> str:
        return storefront.register_script(_client(connector), src, scope)

    def update_script(self, connector: ShopConnector, script_id: str, src: str, scope: str = "shop") -> None:
        storefront.update_script(_client(connector), script_id, src, scope)

    def remove_script(self, connector: ShopConnector, script_id: str) -> None:
        storefront.remove_script(_client(connector), script_id)

    def list_scripts(self, connector: ShopConnector) -> Mapping[str, tuple[str, str]]:
        return storefront.list_scripts(_client(connector))

    def revoke_token(self, access_token: str) -> bool:
        return oauth.revoke_token(access_token)

    def cart_url(self, shop_url: str) -> str:
        return storefront.cart_url(shop_url)

    def parse_event(self, body: bytes) -> StorefrontEvent:
        return storefront.parse_event(body)


def _client(connector: ShopConnector) -> ColorMeClient:
    if not isinstance(connector, ColorMeConnector):
        raise TypeError(f"a ColorMe script tag needs a ColorMe connector, not {type(connector).__name__}")
    return connector.client
