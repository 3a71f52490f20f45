"""The Shopify descriptor: everything the generic code asks of Shopify.

Install is Shopify-managed: there is no install hook. The merchant arrives at the app URL
(`GET /shopify/app`, shopify.app.toml's application_url) with `shop`, `hmac`, `timestamp`, `host`
and, inside the admin frame, the App Bridge `id_token`; `verify_launch` checks that query. Inside
the admin the id token is exchanged for an expiring offline token (`exchange_id_token`); outside
it the authorization-code grant runs (`authorize_url`, `verify_callback`, `exchange_code_for`).
Tokens expire after an hour: `refresh_grant` renews them and `connect` hands the GraphQL client a
token source that refreshes before expiry and on a 401.

Webhooks, all at the one endpoint `POST /shopify/webhooks` (plugin/web/routes/webhooks.py):
- `verify_delivery` checks `X-Shopify-Hmac-Sha256` on the raw body and reads the headers;
- `webhook_topics` is `{topic: handler}`: `app/uninstalled` is handled here and returns
  `Uninstalled`, which the endpoint applies at once (stop all sending, drop the tokens); every other
  topic comes from `webhooks.topic_handlers(platform)` (stored, then applied by a worker).
There is no install hook (`hooks` is empty): Shopify installs the app itself.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import httpx

from connectors.base import ShopConnector
from connectors.errors import BadResponse
from connectors.platform import (
    AppLaunch,
    Grant,
    HookEffect,
    LaunchRefused,
    Platform,
    TokenSource,
    TopicDelivery,
    TopicHandler,
    Uninstalled,
)
from connectors.shopify import embedded, oauth, pixel_events, webhooks
from connectors.shopify.config import ShopifyConfig
from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.graphql import GraphQLClient
from connectors.shopify.oauth import ShopifyGrant
from connectors.shopify.query_hmac import QueryRefused, verify_query
from connectors.shopify.session_token import SessionTokenRefused, verify_session_token
from connectors.shopify.shop_domain import InvalidShopDomain, parse_shop_domain
from connectors.shopify.webhook_delivery import verify_delivery
from connectors.storefront import StorefrontEvent

__all__ = ["ShopifyPlatform", "UNINSTALLED_TOPIC"]

UNINSTALLED_TOPIC = "app/uninstalled"


class ShopifyPlatform(Platform[ShopifyConfig]):
    """Shopify: managed install, token exchange or code grant, expiring tokens, GraphQL sync."""

    name = "shopify"
    title = "Shopify"
    config_class = ShopifyConfig
    app_store_url = "https://apps.shopify.com/"
    managed_install = True
    embedded_admin = True
    # No native points: a merchant-named customer metafield holds the balance (and optionally one the
    # expiry date); without an expiry field, points expire by the shop's rule after the last order.
    points_field_required = True
    points_expire_after = timedelta(days=365)

    # Install and OAuth -------------------------------------------------------------------

    def check_account(self, account: str) -> None:
        try:
            parse_shop_domain(account)
        except InvalidShopDomain as exc:
            raise BadResponse(str(exc), platform=self.name, status=400) from None

    def verify_launch(self, raw_query: str, now: datetime) -> AppLaunch:
        params = self._signed_query(raw_query, now)
        return AppLaunch(account=self._shop(params), id_token=params.get("id_token", ""),
                         host=params.get("host", "")[:500])

    def verify_callback(self, raw_query: str, now: datetime) -> str:
        return self._shop(self._signed_query(raw_query, now))

    def authorize_url(self, account: str, redirect_uri: str, state: str) -> str:
        config = self.config
        return oauth.authorize_url(account, client_id=config.client_id, scopes=config.scope_set,
                                   redirect_uri=redirect_uri, state=state, api_base=config.api_base)

    def exchange_code(self, code: str, redirect_uri: str) -> Grant:
        raise NotImplementedError("a Shopify code is exchanged at its shop: exchange_code_for")

    def exchange_code_for(self, account: str, code: str, redirect_uri: str, now: datetime) -> Grant:
        config = self.config
        with self._http() as http:
            grant = oauth.exchange_code(http, account, client_id=config.client_id, client_secret=config.client_secret,
                                        code=code, now=now, api_base=config.api_base)
        return self._granted(grant)

    def exchange_id_token(self, account: str, id_token: str, now: datetime) -> Grant:
        config = self.config
        with self._http() as http:
            grant = oauth.exchange_session_token(http, account, client_id=config.client_id,
                                                 client_secret=config.client_secret, id_token=id_token, now=now,
                                                 api_base=config.api_base)
        return self._granted(grant)

    def refresh_grant(self, account: str, grant: Grant, now: datetime) -> Grant:
        config = self.config
        held = ShopifyGrant(grant.access_token, _scopes(grant.scope), grant.expires_at, grant.refresh_token,
                            grant.refresh_expires_at)
        with self._http() as http:
            fresh = oauth.refresh(http, account, client_id=config.client_id, client_secret=config.client_secret,
                                  grant=held, now=now, api_base=config.api_base)
        return _neutral(fresh)

    def session_account(self, token: str, now: datetime) -> str:
        config, refused = self.config, SessionTokenRefused("missing")
        for secret in config.secrets or ("",):
            try:
                return verify_session_token(token, client_id=config.client_id, client_secret=secret,
                                            now=now.timestamp()).shop
            except SessionTokenRefused as exc:
                refused = exc
        raise LaunchRefused(refused.reason, f"session token refused: {refused.reason}", platform=self.name, status=401)

    @property
    def public_url(self) -> str:
        return self.config.app_url

    def missing_scopes(self, granted: str) -> frozenset[str]:
        return frozenset(oauth.missing_scopes(self.config.scope_set, _scopes(granted)))

    def frame_ancestors(self, account: str) -> tuple[str, ...]:
        return (f"https://{parse_shop_domain(account)}", embedded.ADMIN_ORIGIN)

    def embedded_head(self, account: str) -> str:
        return embedded.embedded_head(self.config.client_id)

    # Sync --------------------------------------------------------------------------------

    def open_connector(self, access_token: str, now: datetime) -> ShopConnector:
        raise NotImplementedError("a Shopify connector needs its shop: connect(account, tokens, now)")

    def connect(self, account: str, tokens: TokenSource, now: datetime) -> ShopifyConnector:
        config = self.config
        shop = parse_shop_domain(account)
        client = GraphQLClient(shop, tokens.current, on_unauthorized=tokens.rejected, timeout=config.timeout_seconds,
                               api_base=f"{config.api_base}/{shop}" if config.api_base else None)
        return ShopifyConnector(client, now)

    def cart_url(self, shop_url: str) -> str:
        return f"{shop_url.rstrip('/')}/cart"

    # Webhooks ----------------------------------------------------------------------------

    def verify_delivery(self, body: bytes, headers: Mapping[str, str]) -> TopicDelivery:
        lowered = {key.lower(): value for key, value in headers.items()}
        try:
            delivery = verify_delivery(body, lowered, self.config.secrets)
        except ValueError as exc:  # the signature held: the headers are not Shopify's
            raise BadResponse(f"Shopify webhook: {exc}", platform=self.name, status=400) from None
        return TopicDelivery(account=delivery.shop, topic=delivery.topic, delivery_key=delivery.webhook_id,
                             triggered_at=delivery.triggered_at)

    @property
    def webhook_topics(self) -> Mapping[str, TopicHandler]:
        return {**webhooks.topic_handlers(self), UNINSTALLED_TOPIC: self._app_uninstalled}

    def parse_event(self, body: bytes) -> StorefrontEvent:
        return pixel_events.parse_event(body)  # what the web pixel posts (connectors/shopify/pixel)

    def read_hook(self, topic: str, body: bytes, *, shop_url: str, currency: str) -> HookEffect:
        return webhooks.read_hook(topic, body, shop_url=shop_url, currency=currency)

    def _app_uninstalled(self, delivery: TopicDelivery, body: bytes) -> Uninstalled:
        return Uninstalled(account=delivery.account, delivery_key=f"webhook:{delivery.delivery_key}",
                           reason=UNINSTALLED_TOPIC)

    # ------------------------------------------------------------------------------------

    def _signed_query(self, raw_query: str, now: datetime) -> dict[str, str]:
        refused: QueryRefused | None = None
        for secret in self.config.secrets or ("",):
            try:
                return verify_query(raw_query, secret, now.timestamp())
            except QueryRefused as exc:
                refused = exc
                if exc.reason != "bad_signature":
                    break
        reason = refused.reason if refused else "unsigned"
        raise LaunchRefused(reason, f"Shopify query refused: {reason}", platform=self.name, status=400)

    def _shop(self, params: Mapping[str, str]) -> str:
        try:
            return parse_shop_domain(params.get("shop"))
        except InvalidShopDomain:
            raise LaunchRefused("foreign_shop", "not a *.myshopify.com shop", platform=self.name, status=400) from None

    def _granted(self, grant: ShopifyGrant) -> Grant:
        """A new grant, refused when Shopify granted fewer scopes than Okaeri asked for."""
        missing = oauth.missing_scopes(self.config.scope_set, grant.scopes)
        if missing:
            raise LaunchRefused("scopes", f"Shopify granted without {', '.join(sorted(missing))}",
                                platform=self.name, status=400)
        return _neutral(grant)

    def _http(self) -> httpx.Client:
        return httpx.Client(timeout=httpx.Timeout(self.config.timeout_seconds, connect=5.0))


def _scopes(scope: str) -> frozenset[str]:
    return frozenset(s.strip() for s in scope.split(",") if s.strip())


def _neutral(grant: ShopifyGrant) -> Grant:
    return Grant(access_token=grant.access_token, scope=",".join(sorted(grant.scopes)), expires_at=grant.expires_at,
                 refresh_token=grant.refresh_token, refresh_expires_at=grant.refresh_expires_at)

