"""What every preset shares: a key, names, defaults, a set-based audience and a render context.

A preset's `audience` is one SQL SELECT over a shop (never a Python loop over customers)
returning customer_id and what triggered the message, as typed columns (`scenarios.sql.trigger`):

- trigger_kind: a short word, e.g. "cart", "post", "restock", "statement";
- trigger_ref: the id of the row it points at (cart, order, product, browse event), or NULL;
- trigger_step: the cart revision, the post-purchase step, the stock change's day, the period…, or NULL.

The engine wraps it with the gates and writes the three columns, and `trigger_key`, the
trigger's identity (`Trigger.key`, kind, ref and step joined by ':'), which nothing parses.
Delivery asks `contexts` for the template variables of many messages at once, with stock as it
is then; `contexts` and `still_wanted` read the typed columns.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from sqlalchemy import CompoundSelect, Select, select
from sqlmodel import Session, col

from plugin.storage.models import FEW_LEFT, Customer, Message, Product, Shop, Trigger

__all__ = ["Scenario", "Audience", "Copy", "product_view", "in_stock_views", "shop_link", "same_site"]

# What `Scenario.audience` returns: one SELECT, or a UNION ALL of several.
Audience: TypeAlias = "Select[Any] | CompoundSelect[Any]"


@dataclass(frozen=True)
class Copy:
    """A preset's default words in one language: Jinja2 strings rendered in the sandbox at delivery."""

    subject: str
    headline: str
    intro: str
    cta: str = ""
    items_title: str = ""


VIEW_COLUMNS = (col(Product.id), col(Product.name), col(Product.price), col(Product.url), col(Product.image_url), col(Product.stock))


def product_view(product: Product | Any) -> dict[str, Any]:
    """What templates know of a promoted product (a Product, or a row with the same columns)."""
    return {"id": product.id, "name": product.name, "price": product.price, "url": product.url,
            "image_url": product.image_url, "few_left": product.stock is not None and 0 < product.stock <= FEW_LEFT}


def same_site(url: str, shop_url: str) -> bool:
    """True when `url` is on the shop's own scheme and host (a link back to the shop)."""
    target, home = urlsplit(url), urlsplit(shop_url)
    return bool(home.netloc) and (target.scheme, target.netloc.lower()) == (home.scheme, home.netloc.lower())


def shop_link(shop: Shop, url: str | None) -> str:
    """`url` if it leads to the shop's own site (scheme and host of its synced URL), else the shop's
    front page: a stored link written before events were bound to storage can lead nowhere else."""
    return url if url and same_site(url, shop.domain) else shop.domain


def in_stock_views(session: Session, shop_id: int, product_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Visible, in-stock products by id: the stock gate every promoted item passes at delivery."""
    if not product_ids:
        return {}
    rows = session.execute(select(*VIEW_COLUMNS).where(  # columns, not entities: read for every batch of mail
        col(Product.shop_id) == shop_id, col(Product.id).in_(set(product_ids)), col(Product.visible).is_(True),
        (col(Product.stock).is_(None)) | (col(Product.stock) > 0)))
    return {p.id: product_view(p) for p in rows}


class Scenario:
    """A preset. Subclasses set the class attributes and implement `audience` and `contexts`."""

    key: str = ""
    name_ja: str = ""
    name_en: str = ""
    priority: int = 50  # higher wins the frequency cap within a tick
    default_delay: timedelta = timedelta(0)
    channels: tuple[str, ...] = ("email",)
    needs_items: bool = True  # a message whose items all sold out is not sent
    one_per_period: bool = False  # purely periodic: at most one trigger per customer per period
    copy: dict[str, Copy] = {}

    def audience(self, shop: Shop, now: datetime, delay: timedelta, periodic: bool = True) -> Audience:
        """Columns customer_id, trigger_kind, trigger_ref, trigger_step: everyone this preset should message now.

        `periodic` is False once this period's run (see `period`) has been written: a weekly or
        monthly preset then selects only its event-driven part, if it has one.
        """
        raise NotImplementedError

    def contexts(self, session: Session, shop: Shop, messages: Sequence[Message]) -> dict[int, dict[str, Any]]:
        """Template variables per message id, loaded in a few batched queries."""
        raise NotImplementedError

    def still_wanted(self, session: Session, messages: Sequence[Message]) -> set[int]:
        """Re-checked right before delivery: ids whose exit condition has not been met."""
        return {m.id for m in messages if m.id is not None}

    def sample_trigger(self, session: Session, shop: Shop, customer: Customer) -> Trigger:
        """A trigger `contexts` can read, from the customer's own data: for previews (nothing is written)."""
        return Trigger(self.key, None, "preview")

    def period(self, now: datetime, timezone: str) -> str | None:
        """The current period of a periodic preset (e.g. "2026-11"), or None for event-driven ones."""
        return None

    def unsupported_reason(self, session: Session, shop: Shop) -> str | None:
        """Why this preset cannot run on this shop's data (None when it can)."""
        return None

    def name(self, lang: str) -> str:
        return self.name_ja if lang == "ja" else self.name_en
