"""購入後ステップ配信: after an order — thanks; a "how is it?" survey at +7 days; follow-ups at
30/90/240/365 days — run per **product group**, not per order.

A product's group is `Product.group_code`: the platform's, or the one the merchant's grouping
rules give it (plugin.storage.product_groups; a sample, the regular item, a subscription and a set
of one product can be one group). The rule the steps follow:

- A purchase **starts** a group's steps when the customer had not bought from that group in the
  12 months before it. The order that starts them is the sequence's anchor: every step is counted
  from it, and its trigger is (post, that order, step), one message per step even when the order
  starts several groups.
- A later purchase from the same group within those 12 months **continues** the running
  sequence: it starts nothing, so there is no second thanks or survey for the same product, and
  the follow-ups come on the first purchase's schedule.
- The mail shows one in-stock product per group the anchor started: the one the customer bought
  most recently in that group (after a sample and then the regular item, the regular item).
- An order none of whose lines is a known product starts a sequence of its own.
- Follow-up steps (d30 … d365) also carry `due_items`: the customer's consumables due for
  repurchase now by their own predicted interval (recommender.repurchase), for copy that says
  "time for more"; the thanks and survey steps do not.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, and_, case, cast, exists, false, literal, not_, or_, select, union_all
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from plugin.storage.models import Customer, Message, Order, OrderLine, Product, Shop, Trigger, trigger_key_sql, written
from plugin.storage.point_expiry import months_after
from recommender.serving import due_many
from scenarios.base import Audience, Copy, Scenario, in_stock_views, product_view
from scenarios.sql import trigger

__all__ = ["PostPurchase", "STEPS", "CONTINUES_MONTHS", "starts_sequence", "SURVEY_COPY"]

# step → days after the order; the thanks step waits the preset's delay (default 1 h)
STEPS = {"thanks": 0, "survey": 7, "d30": 30, "d90": 90, "d240": 240, "d365": 365}
CATCH_UP = timedelta(days=3)
CONTINUES_MONTHS = 12  # a purchase this soon after one from the same group continues its sequence
LOOK_BACK = timedelta(days=31 * CONTINUES_MONTHS + 1)  # a bound the index can use; months_after is exact
STEP_COPY = {
    # Plain text: a step's words reach the mail as a variable, so a template tag here would be
    # printed as it stands; the customer's name is in the preset's copy around it.
    "ja": {"thanks": ("ご購入ありがとうございました", "このたびはご購入ありがとうございました。"),
           "survey": ("商品はいかがですか？", "お届けした商品の使い心地はいかがでしょうか。ご感想をお聞かせください。"),
           "follow": ("そろそろいかがですか？", "以前ご購入いただいた商品のご案内です。")},
    "en": {"thanks": ("Thank you for your order", "thank you for your order."),
           "survey": ("How is it going?", "how do you like what you bought? Tell us."),
           "follow": ("Time for more?", "a note about what you bought before.")},
}
# The survey step's 0–10 question; delivery adds the eleven signed answer links (survey.links).
SURVEY_COPY = {
    "ja": {"question": "このショップを友人や知人にすすめる可能性は、どのくらいありますか？",
           "low": "0 = まったくない", "high": "10 = 非常に高い", "hint": "数字をひとつ押すだけで回答できます。"},
    "en": {"question": "How likely are you to recommend us to a friend or colleague?",
           "low": "0 = not at all likely", "high": "10 = extremely likely", "hint": "One click on a number is your answer."},
}


def _group(product: Any) -> ColumnElement[str]:
    """A product's group; a product without one is a group of its own."""
    return case((product.group_code == "", cast(product.id, String)), else_=product.group_code)


def _new_groups(order: Any, earliest: datetime | None = None) -> tuple[Any, Any, ColumnElement[bool]]:
    """(line, product, condition): the order's lines whose group the customer had not bought from
    in the CONTINUES_MONTHS before the order (earlier orders first; ties by id)."""
    line: Any = aliased(OrderLine)
    product: Any = aliased(Product)
    prior: Any = aliased(Order)
    prior_line: Any = aliased(OrderLine)
    prior_product: Any = aliased(Product)
    earlier = or_(prior.ordered_at < order.ordered_at, and_(prior.ordered_at == order.ordered_at, prior.id < order.id))
    bought_before = exists().where(
        prior.shop_id == order.shop_id, prior.customer_id == order.customer_id, prior.canceled.is_(False), earlier,
        *([prior.ordered_at >= earliest] if earliest is not None else []),
        months_after(prior.ordered_at, CONTINUES_MONTHS) > order.ordered_at,
        prior_line.order_id == prior.id, prior_product.id == prior_line.product_id,
        _group(prior_product) == _group(product)).correlate_except(prior, prior_line, prior_product)
    return line, product, and_(line.order_id == order.id, product.id == line.product_id, not_(bought_before))


def starts_sequence(order: Any, earliest: datetime | None = None) -> ColumnElement[bool]:
    """True for an order that starts the steps of at least one product group (see the module)."""
    line, product, new = _new_groups(order, earliest)
    known: tuple[Any, Any] = aliased(OrderLine), aliased(Product)
    has_products = exists().where(known[0].order_id == order.id, known[1].id == known[0].product_id)
    return or_(exists().where(new), not_(has_products))


class PostPurchase(Scenario):
    key = "post_purchase"
    name_ja = "購入後ステップ配信"
    name_en = "Post-purchase steps"
    priority = 60
    default_delay = timedelta(hours=1)
    needs_items = False
    copy = {
        "ja": Copy("【{{ shop.name }}】{{ step.title }}", "{{ step.title }}", "{{ customer.name }} 様、{{ step.intro }}",
                   "ショップを見る", "ご購入の商品"),
        "en": Copy("[{{ shop.name }}] {{ step.title }}", "{{ step.title }}", "Dear {{ customer.name }}, {{ step.intro }}",
                   "Visit the shop",
                   "Your order"),
    }

    def audience(self, shop: Shop, now: datetime, delay: timedelta, periodic: bool = True) -> Audience:
        selects = []
        for step, days in STEPS.items():
            due = now - (delay if days == 0 else timedelta(days=days))
            order: Any = aliased(Order)
            selects.append(select(order.customer_id.label("customer_id"), *trigger("post", order.id, step))
                           .where(order.shop_id == shop.id, order.customer_id.is_not(None),
                                  order.canceled.is_(False), order.ordered_at <= due,
                                  order.ordered_at > due - CATCH_UP,
                                  # The idempotency gate asks this too, later; asked first here (a CASE
                                  # keeps the order, which the planner would otherwise choose), a steady
                                  # tick re-reading the catch-up window looks up an order's earlier
                                  # groups only while it has no message yet (~4 in 5 have one).
                                  case((written(shop.id, order.customer_id, self.key, trigger_key_sql(
                                      literal("post", String), order.id, literal(step, String))), false()),
                                       else_=starts_sequence(order, due - CATCH_UP - LOOK_BACK))))
        return union_all(*selects)

    def contexts(self, session: Session, shop: Shop, messages: Sequence[Message]) -> dict[int, dict[str, Any]]:
        started = self._started_groups(session, {m.trigger_ref or 0 for m in messages})
        latest = self._latest_bought(session, shop, {m.customer_id for m in messages},
                                     {g for groups in started.values() for g in groups})
        stocked = in_stock_views(session, shop.id or 0, [p for by_group in latest.values() for ps in by_group.values()
                                                         for p in ps])
        lang = "ja" if shop.locale == "ja" else "en"
        follow_ups = [m.customer_id for m in messages if (m.trigger_step or "thanks") not in ("thanks", "survey")]
        due = due_many(session, shop, follow_ups, 4) if follow_ups else {}
        out = {}
        for m in messages:
            step = m.trigger_step or "thanks"
            title, intro = STEP_COPY[lang][step if step in ("thanks", "survey") else "follow"]
            groups = sorted(started.get(m.trigger_ref or 0, set()))
            bought = latest.get(m.customer_id, {})
            items = [next(stocked[p] for p in bought[g] if p in stocked)
                     for g in groups if any(p in stocked for p in bought.get(g, []))]  # one product per group
            out[m.id or 0] = {"step": {"name": step, "title": title, "intro": intro},
                              "items": items, "groups": groups, "cta_url": shop.domain,
                              "due_items": [] if step in ("thanks", "survey") else
                              [product_view(p) for p in due.get(m.customer_id, [])]}
            if step == "survey":
                out[m.id or 0]["survey"] = SURVEY_COPY[lang]
        return out

    @staticmethod
    def _started_groups(session: Session, order_ids: set[int]) -> dict[int, set[str]]:
        """Per anchor order, the product groups whose steps it started."""
        order: Any = aliased(Order)
        line, product, new = _new_groups(order)
        rows = session.execute(select(order.id, _group(product)).where(order.id.in_(order_ids), new)).all()
        started: dict[int, set[str]] = defaultdict(set)
        for order_id, group in rows:
            started[order_id].add(group)
        return started

    @staticmethod
    def _latest_bought(session: Session, shop: Shop, customer_ids: set[int],
                       groups: set[str]) -> dict[int, dict[str, list[int]]]:
        """Per customer and group, the products they bought from it, the most recent first."""
        rows = session.execute(
            select(col(Order.customer_id), _group(Product), col(Product.id))
            .join(OrderLine, col(OrderLine.order_id) == col(Order.id)).join(Product, col(Product.id) == col(OrderLine.product_id))
            .where(col(Order.shop_id) == shop.id, col(Order.customer_id).in_(customer_ids), col(Order.canceled).is_(False),
                   _group(Product).in_(groups))
            .order_by(col(Order.ordered_at).desc(), col(Order.id).desc())).all()
        latest: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for customer_id, group, product_id in rows:
            if product_id not in latest[customer_id][group]:
                latest[customer_id][group].append(product_id)
        return latest

    def sample_trigger(self, session: Session, shop: Shop, customer: Customer) -> Trigger:
        order = session.execute(select(col(Order.id)).where(col(Order.customer_id) == customer.id)
                                .order_by(col(Order.ordered_at).desc())).scalars().first()
        return Trigger("post", order or 0, "thanks")
