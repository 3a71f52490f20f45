"""ポイント有効期限のお知らせ and ポイント明細: balances that expire soon, and a monthly statement.

Both read `Customer.points_expire_at`. Where the platform's data carries the date, it is that
date; where it does not (ColorMe), it is the shop's rule — `Shop.points_expiry_months` after the
customer's last order (default 12, set on /app/rules) — kept by sync and recomputed at once when
the merchant changes it (plugin.storage.point_expiry).
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, false, literal, or_, select, union_all
from sqlmodel import Session, col

from plugin.storage.models import Customer, Message, PointFields, Product, Shop
from plugin.storage.point_expiry import expiry_source
from plugin.storage.point_fields import NO_FIELD_REASON
from recommender.serving import top_n_many
from scenarios.base import Audience, Copy, Scenario, product_view
from scenarios.sql import day_text, local_month, step_text, trigger

__all__ = ["PointExpiry", "PointStatement"]


def _no_point_data(session: Session, shop: Shop) -> str | None:
    fields = session.get(PointFields, shop.id)
    if fields is not None and not fields.balance_field:  # a platform without native points: nothing named yet
        return NO_FIELD_REASON
    has = session.execute(select(col(Customer.id)).where(col(Customer.shop_id) == shop.id, col(Customer.points_balance) > 0)).first()
    return None if has else "ショップのポイントデータがありません / this shop has no point balances"


def _balances(session: Session, messages: Sequence[Message]) -> dict[int, tuple[int, datetime | None, datetime | None]]:
    rows = session.execute(select(col(Customer.id), col(Customer.points_balance), col(Customer.points_expire_at),
                                  col(Customer.last_order_at))
                           .where(col(Customer.id).in_({m.customer_id for m in messages}))).all()
    return {cid: (balance, expire, last_order) for cid, balance, expire, last_order in rows}


def _points(shop: Shop, balance: int, expires: datetime | None, last_order: datetime | None) -> dict[str, Any]:
    """What a points mail may show: the balance, its expiry and where that date comes from
    (`points.expires_source`, in the shop's language)."""
    source = expiry_source(shop, _local_date(last_order, shop), shop.locale) if expires else ""
    return {"balance": balance, "expires": _local_date(expires, shop), "expires_source": source}


def _affordable(session: Session, shop: Shop, limit: int) -> list[Product]:
    """In-stock products, dearest first: matched to each balance below."""
    return list(session.execute(select(Product).where(
        col(Product.shop_id) == shop.id, col(Product.visible).is_(True), col(Product.price) > 0,
        or_(col(Product.stock).is_(None), col(Product.stock) > 0)).order_by(col(Product.price).desc(), col(Product.id))
        .limit(limit)).scalars())


def _local_date(moment: datetime | None, shop: Shop) -> str:
    return moment.astimezone(ZoneInfo(shop.timezone)).strftime("%Y-%m-%d") if moment else ""


class PointExpiry(Scenario):
    key = "point_expiry"
    name_ja = "ポイント有効期限のお知らせ"
    name_en = "Points expiry notice"
    priority = 80
    needs_items = False
    copy = {
        "ja": Copy("【{{ shop.name }}】{{ points.balance }}ポイントの有効期限が近づいています", "ポイントの有効期限が近づいています",
                   "{{ customer.name }} 様の {{ points.balance }} ポイントは {{ points.expires }} に失効します"
                   "（{{ points.expires_source }}）。お早めにご利用ください。", "ショップでポイントを使う", "ポイントで買える商品"),
        "en": Copy("[{{ shop.name }}] Your {{ points.balance }} points expire soon", "Your points expire soon",
                   "Dear {{ customer.name }}, your {{ points.balance }} points expire on {{ points.expires }}"
                   " ({{ points.expires_source }}).",
                   "Use your points", "Your points can buy"),
    }

    def audience(self, shop: Shop, now: datetime, delay: timedelta, periodic: bool = True) -> Audience:
        base = and_(col(Customer.shop_id) == shop.id, col(Customer.points_balance) > 0, col(Customer.points_expire_at) > now)
        within = [(30, and_(col(Customer.points_expire_at) <= now + timedelta(days=30),
                            col(Customer.points_expire_at) > now + timedelta(days=7))),
                  (7, col(Customer.points_expire_at) <= now + timedelta(days=7))]
        selects = [select(col(Customer.id).label("customer_id"),
                          *trigger("expiry", None, step_text(day_text(col(Customer.points_expire_at)), str(days))))
                   .where(base, condition) for days, condition in within]
        return union_all(*selects)

    def contexts(self, session: Session, shop: Shop, messages: Sequence[Message]) -> dict[int, dict[str, Any]]:
        balances = _balances(session, messages)
        catalogue = _affordable(session, shop, 200)
        out = {}
        for m in messages:
            balance, expires, last_order = balances.get(m.customer_id, (0, None, None))
            items = [product_view(p) for p in catalogue if p.price <= balance][:3]
            out[m.id or 0] = {"points": _points(shop, balance, expires, last_order),
                              "items": items, "cta_url": shop.domain}
        return out

    def unsupported_reason(self, session: Session, shop: Shop) -> str | None:
        return _no_point_data(session, shop)


class PointStatement(Scenario):
    key = "point_statement"
    name_ja = "ポイント明細"
    name_en = "Monthly points statement"
    priority = 30
    one_per_period = True
    needs_items = False
    copy = {
        "ja": Copy("【{{ shop.name }}】今月のポイント明細", "ポイント明細",
                   "{{ customer.name }} 様の現在のポイントは {{ points.balance }} ポイントです"
                   "{% if points.expires %}（有効期限 {{ points.expires }}、{{ points.expires_source }}）{% endif %}。",
                   "ショップを見る", "ポイントで買えるおすすめ"),
        "en": Copy("[{{ shop.name }}] Your points this month", "Your points statement",
                   "Dear {{ customer.name }}, you have {{ points.balance }} points"
                   "{% if points.expires %} (valid until {{ points.expires }}; {{ points.expires_source }}){% endif %}.",
                   "Visit the shop", "Recommended within your points"),
    }

    def audience(self, shop: Shop, now: datetime, delay: timedelta, periodic: bool = True) -> Audience:
        month = local_month(now, shop.timezone)
        return select(col(Customer.id).label("customer_id"), *trigger("statement", None, month)).where(
            col(Customer.shop_id) == shop.id, col(Customer.points_balance) > 0, literal(True) if periodic else false())

    def period(self, now: datetime, timezone: str) -> str | None:
        return local_month(now, timezone)

    def contexts(self, session: Session, shop: Shop, messages: Sequence[Message]) -> dict[int, dict[str, Any]]:
        balances = _balances(session, messages)
        picks = top_n_many(session, shop, [m.customer_id for m in messages], 12)
        out = {}
        for m in messages:
            balance, expires, last_order = balances.get(m.customer_id, (0, None, None))
            below = [product_view(p) for p in picks.get(m.customer_id, []) if p.price <= balance][:3]
            out[m.id or 0] = {"points": _points(shop, balance, expires, last_order),
                              "items": below, "cta_url": shop.domain}
        return out

    def unsupported_reason(self, session: Session, shop: Shop) -> str | None:
        return _no_point_data(session, shop)
