"""A sandbox Shopify shop on a loopback port and an Okaeri runtime configured as its app, for the
install, embedded-admin and end-to-end tests (plain functions and fixtures the Shopify tests import)."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import dramatiq
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from plugin.clock import FrozenClock
from plugin.demo.mailcatcher import free_port
from plugin.demo.sandbox.shopify_admin import ShopifySandboxShop, create_shopify_sandbox_app, generate_shop
from plugin.demo.sandbox.shopify_oauth import SandboxOAuth, add_oauth_routes, session_token, signed_launch_query
from plugin.runtime import Runtime, build_runtime
from plugin.settings import Settings
from plugin.storage.models import Shop
from tests.live import serve

API_KEY, API_SECRET = "okaeri-test-api-key", "okaeri-test-api-secret-0123456789"
DOMAIN, OTHER = "sandbox-tea.myshopify.com", "other-tea.myshopify.com"
APP_URL = "http://okaeri.test/shopify/app"


@dataclass
class Sandbox:
    base: str
    shops: dict[str, ShopifySandboxShop]
    oauth: SandboxOAuth
    clock: FrozenClock

    def launch_query(self, shop: str = DOMAIN, *, embedded: bool = False, **extra: str) -> str:
        """The query Shopify signs onto the app URL when the merchant opens the app."""
        params = {"shop": shop, "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvc2FuZGJveA",
                  "timestamp": str(int(self.clock.now().timestamp())), **extra}
        if embedded:
            params |= {"embedded": "1", "id_token": self.session_token(shop)}
        return signed_launch_query(params, API_SECRET)

    def session_token(self, shop: str = DOMAIN, **kwargs: object) -> str:
        return session_token(shop, API_KEY, API_SECRET, now=self.clock.now().timestamp(), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def sandbox(clock: FrozenClock) -> Iterator[Sandbox]:
    shops = {domain: generate_shop(domain, "", customers=6, products=3, orders=5, now=clock.now(), seed=n)
             for n, domain in enumerate((DOMAIN, OTHER))}
    app = create_shopify_sandbox_app(shops)
    oauth = SandboxOAuth(API_KEY, API_SECRET, APP_URL, clock=lambda: clock.now().timestamp())
    add_oauth_routes(app, shops, oauth)
    port = free_port()
    with serve(app, port):
        yield Sandbox(f"http://127.0.0.1:{port}", shops, oauth, clock)


def shopify_settings(settings: Settings, sandbox: Sandbox) -> Settings:
    return settings.model_copy(update={"platform_settings": {
        **settings.platform_settings, "SHOPIFY_API_KEY": API_KEY, "SHOPIFY_API_SECRET": API_SECRET,
        "SHOPIFY_API_BASE": sandbox.base}})


@pytest.fixture
def shopify_runtime(settings: Settings, engine: Engine, clock: FrozenClock, broker: dramatiq.Broker,
                    sandbox: Sandbox) -> Iterator[Runtime]:
    runtime = build_runtime(shopify_settings(settings, sandbox), clock=clock, broker=broker, engine=engine)
    yield runtime
    runtime.close_channels()


def install_by_code_grant(client: TestClient, sandbox: Sandbox, shop: str = DOMAIN) -> httpx.Response:
    """The non-embedded install: the app URL, Shopify's authorize page, the callback. The callback's answer."""
    launch = client.get(f"/shopify/app?{sandbox.launch_query(shop)}", follow_redirects=False)
    assert launch.status_code == 303, launch.text
    approved = httpx.get(launch.headers["location"], follow_redirects=False)
    assert approved.status_code == 302, approved.text
    callback = urlsplit(approved.headers["location"])
    return client.get(f"{callback.path}?{callback.query}", follow_redirects=False)  # type: ignore[return-value]


def authorize_redirect(client: TestClient, sandbox: Sandbox, shop: str = DOMAIN) -> tuple[str, dict[str, str]]:
    """Start the code grant and let the sandbox approve: the callback's path and its query as a dict."""
    launch = client.get(f"/shopify/app?{sandbox.launch_query(shop)}", follow_redirects=False)
    approved = httpx.get(launch.headers["location"], follow_redirects=False)
    callback = urlsplit(approved.headers["location"])
    return callback.path, {key: values[0] for key, values in parse_qs(callback.query).items()}


def the_shop(runtime: Runtime, domain: str = DOMAIN) -> Shop | None:
    with runtime.sessions() as session:
        return session.execute(select(Shop).where(Shop.platform == "shopify", Shop.external_id == domain)).scalar_one_or_none()
