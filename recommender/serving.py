"""Train a shop's recommender from its orders, store the results, and serve `top_n`.

Training writes a complete new RecommendationSet, then points the shop at it in one UPDATE
(the swap is atomic: a reader sees the old set or the new one, never half of one), then
deletes older sets. Scenarios read only through `top_n` / `top_n_many`.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np
from sqlalchemy import delete, select, update
from sqlmodel import Session, col

from plugin.storage.models import Order, OrderLine, Product, Recommendation, RecommendationSet, Shop
from plugin.storage.upsert import table_of
from recommender.data import Purchases
from recommender.models import Model, Popularity
from recommender.protocol import top_k
from recommender.rankings import WINDOWS, bestsellers
from recommender.repurchase import RepurchaseTiming
from recommender.selection import choose_model

__all__ = ["train_shop", "top_n", "top_n_many", "ranking", "similar_products", "STORED"]

log = logging.getLogger("okaeri.recommender")
STORED = 40  # candidates kept per customer; serving filters stock and exclusions from these
BATCH = 2000
MIN_CUSTOMERS_FOR_SELECTION = 30


def _day(moment: datetime) -> int:
    return int(moment.timestamp() // 86400)


def _load(session: Session, shop_id: int) -> tuple[Purchases, np.ndarray]:
    rows = session.execute(
        select(col(Order.customer_id), col(OrderLine.product_id), col(Order.ordered_at), col(OrderLine.quantity))
        .join(OrderLine, col(OrderLine.order_id) == Order.id)
        .where(col(Order.shop_id) == shop_id, col(Order.canceled).is_(False), col(Order.customer_id).is_not(None),
               col(OrderLine.product_id).is_not(None))
    ).all()
    customers = np.array([r[0] for r in rows], dtype=np.int64)
    products = np.array([r[1] for r in rows], dtype=np.int64)
    days = np.array([_day(r[2]) for r in rows], dtype=np.int64)
    quantities = np.array([r[3] for r in rows], dtype=np.float64)
    return Purchases.from_keys(customers, products, days), quantities


def train_shop(session: Session, shop_id: int, now: datetime, n: int = STORED) -> RecommendationSet | None:
    """Train, store and swap in a new set for one shop; None when the shop has no purchases."""
    started = time.perf_counter()
    purchases, quantities = _load(session, shop_id)
    if len(purchases.item) == 0:
        return None
    today = _day(now)
    choice = None
    if purchases.n_customers >= MIN_CUSTOMERS_FOR_SELECTION:
        choice = choose_model(purchases)
    model = (choice.factory() if choice else Popularity()).fit(purchases, today)
    timing = RepurchaseTiming().fit(purchases)
    new_set = RecommendationSet(shop_id=shop_id, model=model.name, trained_at=now,
                                validation_recall=choice.validation_recall if choice else 0.0,
                                customers=purchases.n_customers, items=purchases.n_items)
    session.add(new_set)
    session.flush()
    rows = [*_customer_rows(purchases, model, timing, today, n), *_item_rows(purchases, model),
            *_ranking_rows(session, shop_id, purchases, quantities, today)]
    for start in range(0, len(rows), 5000):
        session.execute(table_of(Recommendation).insert(), [
            {"shop_id": shop_id, "set_id": new_set.id, "kind": kind, "subject": subject,
             "product_ids": ",".join(map(str, ids))} for kind, subject, ids in rows[start:start + 5000]])
    new_set.train_seconds = time.perf_counter() - started
    session.add(new_set)
    session.flush()
    session.execute(update(Shop).where(col(Shop.id) == shop_id).values(recommendation_set_id=new_set.id))
    session.commit()
    _drop_old_sets(session, shop_id, new_set.id or 0)
    log.info("okaeri.recommender.trained", extra={"shop_id": shop_id, "model": model.name})
    return new_set


def _drop_old_sets(session: Session, shop_id: int, keep: int) -> None:
    old = list(session.execute(select(col(RecommendationSet.id)).where(
        col(RecommendationSet.shop_id) == shop_id, col(RecommendationSet.id) != keep)).scalars())
    if old:
        session.execute(delete(Recommendation).where(col(Recommendation.set_id).in_(old)))
        session.execute(delete(RecommendationSet).where(col(RecommendationSet.id).in_(old)))
        session.commit()


def _customer_rows(purchases: Purchases, model: Model, timing: RepurchaseTiming, today: int,
                   n: int) -> Iterable[tuple[str, str, list[int]]]:
    """Due consumables first (most overdue first), then the model's top unseen items."""
    history = purchases.matrix()
    last_day = _last_purchase_days(purchases)
    for start in range(0, purchases.n_customers, BATCH):
        rows = history[start:start + BATCH]
        best = top_k(model.scores(rows), rows, n, overwrite=True)
        for offset, items in enumerate(best):
            customer = start + offset
            owned = history.indices[history.indptr[customer]:history.indptr[customer + 1]]
            days = last_day[customer]
            due = owned[timing.due(owned, np.array([days[i] for i in owned]), today)] if len(owned) else owned
            ranked = [*due.tolist(), *[i for i in items.tolist() if i >= 0]][:n]
            yield "customer", str(purchases.customer_keys[customer]), [int(purchases.item_keys[i]) for i in ranked]


def _last_purchase_days(purchases: Purchases) -> list[dict[int, int]]:
    last: list[dict[int, int]] = [{} for _ in range(purchases.n_customers)]
    for c, i, d in zip(purchases.customer.tolist(), purchases.item.tolist(), purchases.day.tolist(), strict=True):
        if d > last[c].get(i, -1):
            last[c][i] = d
    return last


def _item_rows(purchases: Purchases, model: Model) -> Iterable[tuple[str, str, list[int]]]:
    for item in range(purchases.n_items):
        similar = model.similar_items(item, 20)
        if len(similar):
            yield "item", str(purchases.item_keys[item]), [int(purchases.item_keys[i]) for i in similar]


def _ranking_rows(session: Session, shop_id: int, purchases: Purchases, quantities: np.ndarray,
                  today: int) -> Iterable[tuple[str, str, list[int]]]:
    categories: dict[int | None, str] = dict(session.execute(
        select(col(Product.id), col(Product.category)).where(col(Product.shop_id) == shop_id)).all())
    category_of = np.array([categories.get(int(key), "") for key in purchases.item_keys], dtype=object)
    for window in WINDOWS:
        keys = purchases.item_keys
        overall = bestsellers(purchases.item, quantities, purchases.day, today, window, purchases.n_items, STORED)
        yield "ranking", f"{window}d", [int(keys[i]) for i in overall]
        for category in sorted(set(category_of) - {""}):
            ranked = bestsellers(purchases.item, quantities, purchases.day, today, window, purchases.n_items,
                                 STORED, allowed=category_of == category)
            yield "ranking", f"{window}d:{category}", [int(keys[i]) for i in ranked]


def _lists(session: Session, shop: Shop, kind: str, subjects: Sequence[str]) -> dict[str, list[int]]:
    if shop.recommendation_set_id is None or not subjects:
        return {}
    rows = session.execute(select(col(Recommendation.subject), col(Recommendation.product_ids)).where(
        col(Recommendation.set_id) == shop.recommendation_set_id, col(Recommendation.kind) == kind,
        col(Recommendation.subject).in_(list(subjects))))
    return {subject: [int(p) for p in ids.split(",") if p] for subject, ids in rows}


def ranking(session: Session, shop: Shop, key: str = "30d") -> list[int]:
    """A stored ranking's product ids (e.g. "7d", "30d", "30d:コーヒー豆")."""
    return _lists(session, shop, "ranking", [key]).get(key, [])


def top_n_many(session: Session, shop: Shop, customer_ids: Sequence[int], n: int, *, in_stock_only: bool = True,
               exclude: dict[int, set[int]] | None = None) -> dict[int, list[Product]]:
    """`top_n` for many customers in three queries (lists, fallback ranking, products)."""
    lists = _lists(session, shop, "customer", [str(c) for c in customer_ids])
    fallback = ranking(session, shop, "30d") or ranking(session, shop, "7d")
    wanted = {p for ids in lists.values() for p in ids} | set(fallback)
    if not wanted:  # an untrained shop without rankings: nothing to look up
        return {customer: [] for customer in customer_ids}
    products = {p.id: p for p in session.execute(select(Product).where(
        col(Product.shop_id) == shop.id, col(Product.id).in_(wanted), col(Product.visible).is_(True))).scalars()}
    result: dict[int, list[Product]] = {}
    for customer in customer_ids:
        skip = (exclude or {}).get(customer, set())
        picked: list[Product] = []
        for pid in [*lists.get(str(customer), []), *fallback]:  # cold customers get the ranking
            product = products.get(pid)
            if product is None or pid in skip or any(p.id == pid for p in picked):
                continue
            if in_stock_only and product.stock is not None and product.stock <= 0:
                continue
            picked.append(product)
            if len(picked) == n:
                break
        result[customer] = picked
    return result


def top_n(session: Session, shop: Shop, customer_id: int, n: int, *, in_stock_only: bool = True,
          exclude: Iterable[int] = ()) -> list[Product]:
    """The customer's best n products now: in stock, not excluded; rankings for cold starts."""
    return top_n_many(session, shop, [customer_id], n, in_stock_only=in_stock_only,
                      exclude={customer_id: set(exclude)})[customer_id]


def similar_products(session: Session, shop: Shop, product_id: int, n: int) -> list[int]:
    """Products bought together with this one (stored per item)."""
    return _lists(session, shop, "item", [str(product_id)]).get(str(product_id), [])[:n]
