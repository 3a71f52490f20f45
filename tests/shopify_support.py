"""What the Shopify data tests share: a runtime whose Shopify descriptor knows the app's secret and
reads the sandbox Admin API, a Shopify shop row, signed deliveries, and running the hook jobs."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import dramatiq
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from connectors.base import ShopConnector
from connectors.platform import TokenSource
from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.graphql import GraphQLClient
from connectors.shopify.platform import ShopifyPlatform
from plugin.clock import FrozenClock
from plugin.demo.sandbox.shopify_admin import ShopifySandboxShop, create_shopify_sandbox_app
from plugin.demo.sandbox.shopify_webhooks import post_webhook
from plugin.jobs.actors import register_actors
from plugin.platforms import Platforms
from plugin.runtime import Runtime, build_runtime
from plugin.settings import Settings
from plugin.storage.models import Shop
from plugin.tasks import APPLY_HOOK
from tests.factories import make_shop

APP_SECRET = "shpss_test-app-secret"
SHOP = "okaeri-tea.myshopify.com"
TOKEN = "shpat_sandbox"


class SandboxShopify(ShopifyPlatform):
    """The real descriptor, its connector pointed at the in-process sandbox Admin API."""

    sandbox: ShopifySandboxShop | None = None

    def open_connector(self, access_token: str, now: datetime) -> ShopConnector:
        assert self.sandbox is not None, "give the descriptor a sandbox shop first"
        download = TestClient(create_shopify_sandbox_app({SHOP: self.sandbox}))  # one app: its bulk operations
        client = GraphQLClient(SHOP, lambda: TOKEN, transport=download._transport, api_base=f"http://sandbox/{SHOP}",
                               sleep=lambda _: None)
        return ShopifyConnector(client, now, download=download, sleep=lambda _: None)

    def connect(self, account: str, tokens: TokenSource, now: datetime) -> ShopConnector:
        return self.open_connector(tokens.current(), now)  # the sandbox's fixed token, whatever is stored


def shopify_runtime(settings: Settings, engine: Engine, clock: FrozenClock, broker: dramatiq.Broker) -> Runtime:
    runtime = build_runtime(settings, clock=clock, broker=broker, engine=engine)
    platforms = Platforms(p for p in runtime.platforms if p.name != "shopify")
    platforms.register(SandboxShopify().configured({"SHOPIFY_API_KEY": "okaeri-client", "SHOPIFY_API_SECRET": APP_SECRET}))
    runtime.platforms = platforms
    return runtime


def shopify_shop(session: Session, now: datetime, **fields: Any) -> Shop:
    values = {"platform": "shopify", "external_id": SHOP, "domain": f"https://{SHOP}", "name": "おかえり茶舗"}
    return make_shop(session, now, **{**values, **fields})


def deliver(client: TestClient, topic: str, payload: dict[str, Any], **options: Any) -> Any:
    """Post one delivery signed with the app's secret (options: webhook_id, triggered_at, signature)."""
    return post_webhook(client, topic, payload, shop=SHOP, secret=APP_SECRET, **options)


def run_hooks(runtime: Runtime) -> None:
    """Let an in-process worker apply every queued delivery."""
    if APPLY_HOOK.actor_name not in runtime.broker.actors:
        register_actors(runtime)
    worker = dramatiq.Worker(runtime.broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        runtime.broker.join(APPLY_HOOK.queue_name, timeout=20_000)
        worker.join()
    finally:
        worker.stop()
