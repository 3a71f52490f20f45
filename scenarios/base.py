"""What every preset shares: a key, names, defaults, a set-based selection and a render step."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from plugin.models import Message, Product, Shop

__all__ = ["Candidate", "Scenario", "product_view"]


def product_view(product: Product) -> dict[str, Any]:
    """What templates know of a promoted product."""
    return {"name": product.name, "price": product.price, "url": product.url, "image_url": product.image_url,
            "few_left": product.stock is not None and 0 < product.stock <= 2}


@dataclass(frozen=True)
class Candidate:
    """One customer the selection chose, for one trigger (a cart state, an order, a date)."""

    customer_id: int
    email: str
    name: str
    trigger_key: str
    ref_id: int | None = None  # the row that triggered it (cart id, order id …)
    extra: dict[str, Any] = field(default_factory=dict)


class Scenario:
    """A preset. Subclasses set the class attributes and implement `select` and `contexts`."""

    key: str = ""
    name_ja: str = ""
    name_en: str = ""
    priority: int = 50  # higher wins the frequency cap
    default_delay: timedelta = timedelta(0)
    channels: tuple[str, ...] = ("email",)

    def select(self, session: Session, shop: Shop, now: datetime, delay: timedelta) -> list[Candidate]:
        """Every customer of the shop this scenario should message now: one SQL statement."""
        raise NotImplementedError

    def contexts(self, session: Session, shop: Shop, candidates: list[Candidate]) -> dict[str, dict[str, Any]]:
        """Template variables per trigger_key, loaded in a few batched queries."""
        raise NotImplementedError

    def still_wanted(self, session: Session, message: Message) -> bool:
        """Re-checked right before delivery: False cancels the message (exit condition)."""
        return True
