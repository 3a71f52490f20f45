"""The platform interface: what one shop platform is, as the generic code sees it.

A platform is one package under `connectors/` that exposes one descriptor object, an instance
of a `Platform` subclass (e.g. `connectors.colorme.PLATFORM`), and declares it as an entry
point in the group `okaeri.platforms`. The generic code finds descriptors through that group,
asks them for everything platform-specific and never names a platform itself.

A descriptor says what a platform *is* (its hooks, OAuth, storefront script, data gaps); an
installed shop's view of it is a `ShopConnector` opened with that shop's token.
"""
from __future__ import annotations

import hashlib
from base64 import b64encode
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, Self, TypeVar, cast

from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.base import CheckoutRecord, CustomerRecord, OrderRecord, ProductRecord, ShopConnector, ShopInfo
from connectors.errors import BadResponse, ConnectorError
from connectors.storefront import StorefrontEvent

__all__ = [
    "Platform",
    "PlatformConfig",
    "InstallRequested",
    "Uninstalled",
    "HookEvent",
    "HookHandler",
    "Grant",
    "ForeignGrant",
    "ENTRY_POINT_GROUP",
    "subresource_integrity",
    "AppLaunch",
    "LaunchRefused",
    "TokenSource",
    "TopicDelivery",
    "TopicHandler",
    "HookReceived",
    "RecordsChanged",
    "DataRequest",
    "Redact",
    "HookEffect",
]

ENTRY_POINT_GROUP = "okaeri.platforms"


class PlatformConfig(BaseSettings):
    """A platform's own settings, read from environment variables it names (field aliases).

    Values given to `load` (keyed by variable name) win over the environment, so a process
    can configure a platform without the generic settings knowing its variables.
    """

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    @classmethod
    def load(cls, values: Mapping[str, Any]) -> Self:
        """Build from the environment, overridden by `values`; raises pydantic's ValidationError."""
        return cls(**values)


@dataclass(frozen=True)
class InstallRequested:
    """A merchant started installing Okaeri; OAuth completes it."""

    account: str
    owner_email: str = ""


@dataclass(frozen=True)
class Uninstalled:
    """The app was removed; `delivery_key` is the same for every repeat of one hook."""

    account: str
    delivery_key: str
    reason: str = ""


HookEvent = InstallRequested | Uninstalled
HookHandler = Callable[[bytes, Mapping[str, str]], HookEvent]


@dataclass(frozen=True)
class HookReceived:
    """A verified hook whose work a worker does later: the intake stores it once per (shop,
    `delivery_key`) and answers at once; a worker reads it with `Platform.read_hook` and applies it.

    `body` is the raw (verified) payload; `triggered_at` is when the platform says the change
    happened, if it says (a retry carries the original payload and time)."""

    account: str
    delivery_key: str
    topic: str
    body: bytes
    triggered_at: datetime | None = None


@dataclass(frozen=True)
class RecordsChanged:
    """What a data hook says changed, as the same neutral records a sync yields.

    A record older (by `updated_at`) than what is stored never overwrites it. `customer_points_known`
    False: the hook's customers carry no point balance or expiry (the stored ones stay).
    `stale_products` are platform references (e.g. an inventory item) whose products the shop's
    connector re-reads as they are now (`ShopConnector.iter_products_by_reference`);
    `deleted_products` are products' external ids the platform deleted.
    """

    customers: tuple[CustomerRecord, ...] = ()
    products: tuple[ProductRecord, ...] = ()
    orders: tuple[OrderRecord, ...] = ()
    checkouts: tuple[CheckoutRecord, ...] = ()
    deleted_products: tuple[str, ...] = ()
    stale_products: tuple[str, ...] = ()
    customer_points_known: bool = True


@dataclass(frozen=True)
class DataRequest:
    """A customer asked (through the platform) for the data Okaeri holds on them: an export the
    merchant downloads from the console. `request_id` is the platform's id of the request."""

    customer_external_id: str
    email: str = ""
    request_id: str = ""


@dataclass(frozen=True)
class Redact:
    """Erase personal data for real: one customer (`customer_external_id` and/or `email`), or,
    with both empty and `whole_shop`, every customer of the shop and its own contact details."""

    customer_external_id: str = ""
    email: str = ""
    whole_shop: bool = False


HookEffect = RecordsChanged | DataRequest | Redact


@dataclass(frozen=True)
class Grant:
    """What an OAuth code exchange yields."""

    access_token: str
    scope: str = ""
    # Expiring tokens (platforms whose grants refresh): when the access token dies, the token that
    # renews it (replaced on every use) and when that one dies; empty/None for a non-expiring token.
    expires_at: datetime | None = None
    refresh_token: str = ""
    refresh_expires_at: datetime | None = None


@dataclass(frozen=True)
class AppLaunch:
    """A merchant opened the app from the platform's admin (a platform-managed install).

    The platform signed the query that brought them, so `account` is proven; `id_token` is the
    embedded admin's session token (exchangeable for an access token), "" outside the admin frame.
    """

    account: str
    id_token: str = ""
    host: str = ""


class LaunchRefused(ConnectorError):
    """An app-URL query, OAuth callback or session token that proves no shop; `reason` is a short
    key the merchant's page words (tampered, stale, foreign_shop, …)."""

    def __init__(self, reason: str, message: str = "", *, platform: str = "", status: int = 400) -> None:
        super().__init__(message or reason, platform=platform, status=status)
        self.reason = reason


class TokenSource(Protocol):
    """A shop's stored access token as a connector sees it, for platforms whose tokens expire."""

    def current(self) -> str:
        """The access token to use now (refreshed first when it is about to expire)."""
        ...

    def rejected(self, token: str) -> str:
        """The platform answered 401 to `token`: a refreshed token, or raise Unauthorized."""
        ...


@dataclass(frozen=True)
class TopicDelivery:
    """One inbound webhook delivery whose signature verified, described by the platform's headers."""

    account: str
    topic: str
    delivery_key: str  # the same for every retry of one delivery (the dedupe key)
    triggered_at: datetime | None = None


# What a topic's handler makes of a verified delivery's raw body: a lifecycle HookEvent
# (Uninstalled) or whatever the webhook processing of that platform defines.
TopicHandler = Callable[[TopicDelivery, bytes], object]


class ForeignGrant(ConnectorError):
    """An OAuth code produced a token for another account than the install being completed."""

    def __init__(self, granted: str, expected: str, *, platform: str = "") -> None:
        super().__init__(f"token belongs to {granted}, not {expected}", platform=platform, status=400)
        self.granted = granted
        self.expected = expected


ConfigT = TypeVar("ConfigT", bound=PlatformConfig)


def subresource_integrity(body: bytes) -> str:
    """The SRI value (`sha384-…`) a browser checks a script's bytes against."""
    return "sha384-" + b64encode(hashlib.sha384(body).digest()).decode()


class Platform(Generic[ConfigT]):
    """Base class for platform descriptors.

    Subclasses set the class attributes and override the methods below; the defaults say
    which parts are optional. A descriptor holds its configuration and no per-shop state:
    methods that act for one shop take that shop's connector.

    Attributes:
      name(str): The platform's key: `Shop.platform`, and the first segment of its URLs
        (`/{name}/hooks/{hook}`, `/{name}/oauth/...`, `/storefront/{name}.js`,
        `/events/{name}/{key}`).
      title(str): The platform's name as merchants read it in messages.
      config_class(type[PlatformConfig]): The settings this platform reads.
      points_expire_after(timedelta|None): When the platform's data carries no point expiry
        date, how long after a customer's last order their points expire; None when the
        connector yields `CustomerRecord.points_expire_at` itself.
      app_store_url(str): Where a merchant installs the app again; "" if the platform has no store page.
      script_scopes(tuple[str, ...]): The page scopes the storefront script is registered for,
        one registration each (ColorMe: `shop` and `thanks_page`); ("",) when the platform has one.
    """

    name: str = ""
    title: str = ""
    config_class: type[PlatformConfig] = PlatformConfig
    points_expire_after: timedelta | None = None
    script_scopes: tuple[str, ...] = ("",)
    app_store_url: str = ""
    # True for a platform without native points: a merchant names the customer fields holding the
    # balance (and expiry); until then the point presets are unavailable, saying why.
    points_field_required: bool = False

    def __init__(self, config: ConfigT | None = None) -> None:
        self._config = config

    @property
    def config(self) -> ConfigT:
        """This descriptor's configuration (from the environment unless `configured` set one)."""
        if self._config is None:
            self._config = cast(ConfigT, self.config_class.load({}))
        return self._config

    def configured(self, values: Mapping[str, Any]) -> Self:
        """A copy of this descriptor bound to the environment overridden by `values`.

        Parameters:
          values(Mapping[str, Any]): Settings keyed by environment variable name.

        Raises:
          pydantic.ValidationError: If a value is not valid for this platform.
        """
        return type(self)(cast(ConfigT, self.config_class.load(values)))

    # Install and OAuth -------------------------------------------------------------------

    @property
    def hooks(self) -> Mapping[str, HookHandler]:
        """The platform's inbound hooks or topics, `{hook: handler}`.

        A handler gets the raw body and the request headers, verifies the signature and
        returns what happened; it raises `BadSignature` when the signature does not verify
        and `BadResponse` when the body is not the documented shape. A hook is served at
        `POST /{name}/hooks/{hook}`.
        """
        return {}

    def check_account(self, account: str) -> None:
        """Refuse an account id that cannot belong to this platform, before OAuth starts.

        Raises:
          BadResponse: With a message a merchant can read.
        """
        if not account:
            raise BadResponse("account id is missing", platform=self.name)

    def authorize_url(self, account: str, redirect_uri: str, state: str) -> str:
        """Where to send the merchant's browser to authorise Okaeri for `account`.

        Parameters:
          account(str): The platform account being installed.
          redirect_uri(str): Okaeri's callback, `/{name}/oauth/callback`.
          state(str): The value the callback must bring back.
        """
        raise NotImplementedError

    def exchange_code(self, code: str, redirect_uri: str) -> Grant:
        """Trade the one-time code from the callback for an access token; never retried.

        Raises:
          Unauthorized: If the platform refused the code.
          ProviderDown: If the platform did not answer.
          BadResponse: If the answer is not the documented shape.
        """
        raise NotImplementedError

    def check_grant(self, shop: ShopInfo, account: str) -> None:
        """Make sure the token's shop is the account whose install started.

        Parameters:
          shop(ShopInfo): What the new token's connector reports.
          account(str): The account the install hook (or OAuth start) named.

        Raises:
          ForeignGrant: If the token belongs to another shop.
        """
        if shop.external_id != account:
            raise ForeignGrant(shop.external_id, account, platform=self.name)

    def revoke_token(self, access_token: str) -> bool:
        """Invalidate a token Okaeri will not keep (e.g. one issued for the wrong account).

        Returns:
          bool: True if the platform revoked it; False if the platform offers no revocation.

        Raises:
          ConnectorError: If the platform has a revocation endpoint and it failed.
        """
        return False

    def read_hook(self, topic: str, body: bytes, *, shop_url: str, currency: str) -> HookEffect:
        """Read a stored `HookReceived` body (verified at intake) into what it changes.

        A `webhook_topics` handler returns `HookReceived` for a topic whose work a worker does later;
        the generic intake stores it once per (shop, delivery key) and a worker calls this.

        Parameters:
          topic(str): The hook's topic as the intake stored it.
          shop_url(str): The shop's URL (product links a payload lacks are built from it).
          currency(str): The shop's currency (for payloads whose amounts do not name one).

        Raises:
          BadResponse: If the body is not the documented shape (the delivery is marked failed).
        """
        raise NotImplementedError

    @property
    def webhook_body_limit(self) -> int:
        """The largest webhook body the endpoint reads (an order can carry hundreds of lines)."""
        return 2 * 1024 * 1024

    # Sync --------------------------------------------------------------------------------

    def open_connector(self, access_token: str, now: datetime) -> ShopConnector:
        """One shop's connector, authenticated with its access token; close it after use.

        Parameters:
          access_token(str): The shop's decrypted token.
          now(datetime): The sync's notion of now (order windows end there).
        """
        raise NotImplementedError

    # Storefront script and events --------------------------------------------------------

    def script_body(self) -> str | None:
        """The storefront script served at `/storefront/{name}.js`; None if there is none."""
        return None

    def script_integrity(self) -> str:
        """The SRI of the served script's bytes (UTF-8): what every registration must carry; a
        registration holding another value is updated in place."""
        body = self.script_body()
        return subresource_integrity(body.encode()) if body is not None else ""

    def register_script(self, connector: ShopConnector, src: str, scope: str = "") -> str:
        """Ask the platform to load the script from `src` on the shop's pages of `scope` (one of
        `script_scopes`), with the current `script_integrity`.

        Returns:
          str: The platform's id for the registration.

        Raises:
          ConnectorError: If the platform refused; the install stays active with a note.
        """
        raise NotImplementedError

    def update_script(self, connector: ShopConnector, script_id: str, src: str, scope: str = "") -> None:
        """Point an existing registration at a new `src` and the current `script_integrity`.

        Raises:
          BadResponse: With status 404 if the registration no longer exists.
        """
        raise NotImplementedError

    def list_scripts(self, connector: ShopConnector) -> Mapping[str, tuple[str, str]] | None:
        """This app's script registrations on the shop, `{id: (src, scope)}`; None if the platform cannot list them.

        Re-authorisation uses it to find the registration a shop already has when its id was
        never stored, instead of registering a second one.
        """
        return None

    def remove_script(self, connector: ShopConnector, script_id: str) -> None:
        """Remove a registration; removing one that is already gone is not an error."""
        raise NotImplementedError

    def cart_url(self, shop_url: str) -> str:
        """Where a shop's customers find their cart: the link of a cart reminder.

        Built from the shop's own synced URL (`ShopInfo.domain`), never from a storefront event,
        so a reminder can only lead back to the shop. The default is the shop's front page.

        Parameters:
          shop_url(str): The shop's URL as the platform reports it (scheme and host, no slash).
        """
        return shop_url

    def parse_event(self, body: bytes) -> StorefrontEvent:
        """Read one event the storefront script posted (untrusted bytes).

        The event carries references only (visitor id, claimed customer id, product ids); the
        parser drops prices, names and URLs a beacon may also send.

        Raises:
          InvalidEvent: With a short reason, if the body is not an event.
        """
        raise NotImplementedError

    # Platform-managed install, expiring tokens, embedded admin, webhook topics ------------
    # (additive: a platform without them — ColorMe — keeps the defaults)

    managed_install: bool = False  # the platform installs the app and sends the merchant to the app URL
    embedded_admin: bool = False  # the console also runs inside the platform's admin, by session token

    def verify_launch(self, raw_query: str, now: datetime) -> AppLaunch:
        """Check the signed query the platform sends to the app URL (`GET /{name}/app`).

        Raises:
          LaunchRefused: tampered or unsigned query, stale timestamp, foreign shop domain.
        """
        raise NotImplementedError

    def verify_callback(self, raw_query: str, now: datetime) -> str:
        """The account an OAuth callback's own signature proves; "" when the platform signs none.

        Raises:
          LaunchRefused: If the platform signs its callbacks and this one does not verify.
        """
        return ""

    def exchange_code_for(self, account: str, code: str, redirect_uri: str, now: datetime) -> Grant:
        """`exchange_code` for platforms whose token endpoint lives on the shop's own host; `now`
        dates an expiring grant."""
        return self.exchange_code(code, redirect_uri)

    def exchange_id_token(self, account: str, id_token: str, now: datetime) -> Grant:
        """Token exchange: the embedded admin's session token becomes the shop's offline token.

        Raises:
          Unauthorized: If the platform refused the session token.
        """
        raise NotImplementedError

    def refresh_grant(self, account: str, grant: Grant, now: datetime) -> Grant:
        """A new access token (and its replacement refresh token) for an expiring grant.

        The caller stores the answer atomically and never uses `grant.refresh_token` again.

        Raises:
          Unauthorized: If the refresh token is dead (the shop must authorise again).
        """
        raise NotImplementedError

    def connect(self, account: str, tokens: TokenSource, now: datetime) -> ShopConnector:
        """One shop's connector when the caller can refresh its token; the default opens it with
        the current token (platforms whose tokens never expire)."""
        return self.open_connector(tokens.current(), now)

    def session_account(self, token: str, now: datetime) -> str:
        """The account an embedded admin's session token (a bearer JWT) speaks for.

        Raises:
          LaunchRefused: With status 401, if the token is not valid for this app.
        """
        raise LaunchRefused("no_embedded_admin", platform=self.name, status=401)

    @property
    def public_url(self) -> str:
        """The address the platform knows the app by (its OAuth redirect URI is under it), when it
        is not Okaeri's own base URL (a tunnel, say); "" for the base URL."""
        return ""

    def missing_scopes(self, granted: str) -> frozenset[str]:
        """The scopes this app now asks for that an install's stored grant (`Shop.scopes`) lacks:
        the merchant is sent through authorisation again (a platform re-prompts nobody by itself)."""
        return frozenset()

    def frame_ancestors(self, account: str) -> tuple[str, ...]:
        """The origins allowed to frame the console for `account` inside the platform's admin
        (a CSP `frame-ancestors` list); () for a platform without an embedded admin."""
        return ()

    def embedded_head(self, account: str) -> str:
        """HTML the console's pages carry in their <head> inside the platform's admin (the
        platform's frame library and its glue, trusted markup from the descriptor); "" if none."""
        return ""

    def verify_delivery(self, body: bytes, headers: Mapping[str, str]) -> TopicDelivery:
        """Check one webhook delivery's signature on the raw body, then read its headers.

        Raises:
          BadSignature: With status 401, before anything is parsed.
          BadResponse: If the headers are not the documented shape.
        """
        raise NotImplementedError

    @property
    def webhook_topics(self) -> Mapping[str, TopicHandler]:
        """`{topic: handler}` for deliveries to the platform's one webhook endpoint."""
        return {}
