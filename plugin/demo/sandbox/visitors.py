"""Simulated storefront visitors: logged-in customers who fill baskets and view products.

They post to Okaeri's event endpoint exactly as the storefront script would (a visitor id per
browser, the page's customer id, product ids and quantities), using the key in the script tag
Okaeri registered with the (sandbox) platform at install.
"""
from __future__ import annotations

import random
import string
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

from plugin.demo.sandbox.seed import SandboxData

__all__ = ["registered_event_endpoint", "simulate_visitors", "sold_out_wanted", "restock"]

VISITOR_ALPHABET = string.ascii_letters + string.digits + "-_"


def sold_out_wanted(data: SandboxData, count: int = 3) -> list[dict[str, Any]]:
    """The first few sold-out products on display: the ones visitors look at and the shop restocks."""
    return [p for p in data.products if p["stock_managed"] and p["stocks"] == 0
            and p["display_state"] == "showing"][:count]


def restock(data: SandboxData, products: list[dict[str, Any]], now: datetime, quantity: int = 12) -> None:
    """The merchant receives new stock: the platform's update_date moves, as ColorMe's does."""
    for product in products:
        product["stocks"], product["update_date"] = quantity, int(now.timestamp())


def registered_event_endpoint(data: SandboxData) -> str | None:
    """The event URL derived from the installed script tag, or None before install."""
    for tag in data.script_tags:
        src = urlparse(tag["src"])
        key = parse_qs(src.query).get("key", [""])[0]
        if key:
            return f"{src.scheme}://{src.netloc}/events/colorme/{key}"
    return None


def _visitor_id(rng: random.Random) -> str:
    """A browser's random first-party id, as storefront.js keeps one in localStorage."""
    return "".join(rng.choice(VISITOR_ALPHABET) for _ in range(24))


def simulate_visitors(data: SandboxData, now: datetime, *, seed: int = 7, carts: int = 40, browsers: int = 40,
                      views: int = 120, transport: httpx.BaseTransport | None = None) -> int:
    """Logged-in visitors (one browser each) leave baskets 1.5–30 h old and view products; returns
    how many events the endpoint acknowledged. Each browser claims its customer the way the
    ColorMe page does, so Okaeri binds every customer to the first (and only) browser claiming it."""
    endpoint = registered_event_endpoint(data)
    if endpoint is None:
        return 0
    rng = random.Random(seed)
    buyable = [p for p in data.products if p["display_state"] == "showing" and (p["stocks"] or not p["stock_managed"])]
    people = rng.sample(data.customers, min(carts + browsers, len(data.customers)))
    shoppers, visitors = people[:carts], {str(c["id"]): _visitor_id(rng) for c in people}
    events = []
    for customer in shoppers:
        items = rng.sample(buyable, rng.choice([1, 1, 2, 3]))
        left = now - timedelta(hours=rng.uniform(1.5, 30))
        events.append({"type": "basket", "customer_id": str(customer["id"]), "occurred_at": int(left.timestamp()),
                       "items": [{"id": str(p["id"]), "quantity": rng.choice([1, 1, 2])} for p in items]})
    for _ in range(views):
        customer, product = rng.choice(people), rng.choice(buyable)
        seen = now - timedelta(hours=rng.uniform(0.1, 72))
        events.append({"type": "product_view", "customer_id": str(customer["id"]),
                       "product_id": str(product["id"]), "occurred_at": int(seen.timestamp())})
    for product in sold_out_wanted(data):  # people also look at what is sold out
        for customer in rng.sample(people, 5):
            seen = now - timedelta(hours=rng.uniform(24, 72))
            events.append({"type": "product_view", "customer_id": str(customer["id"]),
                           "product_id": str(product["id"]), "occurred_at": int(seen.timestamp())})
    accepted = 0
    with httpx.Client(timeout=10, transport=transport) as http:
        for event in events:
            event["visitor"] = visitors[str(event["customer_id"])]
            accepted += http.post(endpoint, json=event).status_code == 202
    return accepted
