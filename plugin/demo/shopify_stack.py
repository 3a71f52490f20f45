"""`okaeri demo --platform shopify`: the sandbox Shopify shop beside Okaeri, installed through the
real install routes (the signed app URL, the code grant, the token endpoint), synced through the
GraphQL Admin API (bulk operations, cost throttling), its checkouts arriving as signed webhooks.

The sandbox serves every shop under `/shopify-sandbox/{shop}/…` of the demo's own address, and
Okaeri's Shopify descriptor is pointed there (SHOPIFY_API_BASE), so the whole path runs offline.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlmodel import col

from plugin.demo.sandbox.shopify_admin import ShopifySandboxShop, create_shopify_sandbox_app, generate_shop
from plugin.demo.sandbox.shopify_oauth import SandboxOAuth, add_oauth_routes
from plugin.demo.sandbox.shopify_webhooks import checkout_payload, post_webhook
from plugin.runtime import Runtime
from plugin.storage.models import Customer, InstallState, Product, Shop

__all__ = ["ShopifyDemo", "PLATFORM", "MOUNT", "DOMAIN", "shopify_settings", "mount_shopify_sandbox",
           "install_shopify_via_browser", "send_abandoned_checkouts", "installed_shop_id"]

log = logging.getLogger("okaeri.demo")

PLATFORM = "shopify"
MOUNT = "/shopify-sandbox"
DOMAIN = "okaeri-sandbox.myshopify.com"


@dataclass
class ShopifyDemo:
    """The sandbox Shopify shop and the app credentials both sides share."""

    shop: ShopifySandboxShop
    oauth: SandboxOAuth
    app: FastAPI
    base_url: str  # Okaeri's address (the sandbox lives under it, at MOUNT)

    @property
    def admin_app_url(self) -> str:
        """The link in the sandbox admin that opens the app (Shopify's "Open app")."""
        return f"{self.base_url}{MOUNT}/{DOMAIN}/admin/apps/okaeri"


def shopify_settings(base_url: str, client_id: str, client_secret: str) -> dict[str, Any]:
    """The Shopify descriptor's variables for the demo: the sandbox's credentials and address."""
    return {"SHOPIFY_API_KEY": client_id, "SHOPIFY_API_SECRET": client_secret, "SHOPIFY_API_BASE": f"{base_url}{MOUNT}"}


def mount_shopify_sandbox(app: FastAPI, runtime: Runtime, base_url: str, client_id: str, client_secret: str,
                          anchor: datetime, seed: int) -> ShopifyDemo:
    """Generate the sandbox shop and serve its Admin API, OAuth and admin link under MOUNT."""
    shop = generate_shop(DOMAIN, "", customers=200, products=40, orders=600, now=anchor, seed=seed)
    sandbox = create_shopify_sandbox_app({DOMAIN: shop})
    oauth = SandboxOAuth(client_id, client_secret, f"{base_url}/{PLATFORM}/app",
                         clock=lambda: runtime.clock.now().timestamp())
    add_oauth_routes(sandbox, {DOMAIN: shop}, oauth)
    app.mount(MOUNT, sandbox)
    return ShopifyDemo(shop=shop, oauth=oauth, app=sandbox, base_url=base_url)


def install_shopify_via_browser(browser: httpx.Client, demo: ShopifyDemo) -> httpx.Response:
    """What a merchant does: open the app from the (sandbox) Shopify admin; Shopify signs the app
    URL, the app sends them through the code grant, the sandbox approves, the console opens.
    `browser` follows redirects and keeps cookies; it ends signed in."""
    return browser.get(demo.admin_app_url)


def installed_shop_id(runtime: Runtime) -> int | None:
    with runtime.sessions() as session:
        return session.execute(select(col(Shop.id)).where(
            col(Shop.platform) == PLATFORM, col(Shop.state) == InstallState.active)).scalar()


def send_abandoned_checkouts(runtime: Runtime, demo: ShopifyDemo, count: int = 5, *,
                             idle: timedelta = timedelta(hours=2)) -> list[dict[str, Any]]:
    """The sandbox shop reports `count` checkouts its buyers left `idle` ago (signed `checkouts/create`
    webhooks to Okaeri's endpoint), each for a subscribed customer and products in stock. Returns the payloads."""
    shop_id = installed_shop_id(runtime)
    with runtime.sessions() as session:
        buyers = list(session.execute(select(col(Customer.external_id)).where(
            col(Customer.shop_id) == shop_id, col(Customer.email_consent).is_(True)).order_by(col(Customer.id))
            .limit(count)).scalars())
        stocked = list(session.execute(select(col(Product.external_id)).where(
            col(Product.shop_id) == shop_id, col(Product.stock) > 2).order_by(col(Product.id)).limit(3)).scalars())
    at = runtime.clock.now() - idle
    sent = []
    with httpx.Client(base_url=demo.base_url, timeout=30) as client:
        for n, buyer in enumerate(buyers, 1):
            items = tuple(int(p) for p in stocked[: 1 + n % len(stocked)]) if stocked else (1,)
            payload = checkout_payload(9000 + n, int(buyer), at, shop=DOMAIN, products=items)
            answer = post_webhook(client, "checkouts/create", payload, shop=DOMAIN, secret=demo.oauth.client_secret,
                                  triggered_at=at)
            if answer.status_code == 200:
                sent.append(payload)
            else:
                log.warning("okaeri.demo.checkout-refused", extra={"status": answer.status_code, "body": answer.text[:200]})
    return sent
