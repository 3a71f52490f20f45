"""Train a shop's recommender from its orders, store the results, and serve `top_n`.

Training writes a complete new RecommendationSet, then points the shop at it in one UPDATE
(the swap is atomic: a reader sees the old set or the new one, never half of one), then
deletes older sets. Scenarios read only through `top_n` / `top_n_many` / `due_many`.

Cold start: a shop with fewer than MIN_ORDERS_FOR_MODELS orders is served the bestsellers of
the categories each customer buys from (model "category_popularity"), and says so on the
console (`status`); the nightly retraining makes the choice again, so the learnt models take
over once the history has grown.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import scipy.sparse as sp
from sqlalchemy import delete, func, select, update
from sqlmodel import Session, col

from plugin.storage.models import Order, OrderLine, Product, Recommendation, RecommendationSet, Shop
from plugin.storage.upsert import table_of
from recommender.data import Purchases
from recommender.models import CategoryPopularity, Model
from recommender.protocol import top_k
from recommender.rankings import WINDOWS, bestsellers
from recommender.repurchase import RepurchaseTiming
from recommender.selection import choose_model

__all__ = ["train_shop", "top_n", "top_n_many", "due_many", "ranking", "similar_products", "status", "Status",
           "STORED", "MIN_ORDERS_FOR_MODELS", "COLD_START"]

log = logging.getLogger("okaeri.recommender")
STORED = 40  # candidates kept per customer; serving filters stock and exclusions from these
BATCH = 2000
MIN_CUSTOMERS_FOR_SELECTION = 30
MIN_ORDERS_FOR_MODELS = 300  # below this, validation recall is noise: popularity within categories
COLD_START = "category_popularity"


def _day(moment: datetime) -> int:
    return int(moment.timestamp() // 86400)


def _load(session: Session, shop_id: int) -> tuple[Purchases, np.ndarray, int]:
    rows = session.execute(
        select(col(Order.customer_id), col(OrderLine.product_id), col(Order.ordered_at), col(OrderLine.quantity),
               col(Order.id))
        .join(OrderLine, col(OrderLine.order_id) == Order.id)
        .where(col(Order.shop_id) == shop_id, col(Order.canceled).is_(False), col(Order.customer_id).is_not(None),
               col(OrderLine.product_id).is_not(None))
    ).all()
    customers = np.array([r[0] for r in rows], dtype=np.int64)
    products = np.array([r[1] for r in rows], dtype=np.int64)
    days = np.array([_day(r[2]) for r in rows], dtype=np.int64)
    quantities = np.array([r[3] for r in rows], dtype=np.float64)
    return Purchases.from_keys(customers, products, days), quantities, len({r[4] for r in rows})


def train_shop(session: Session, shop_id: int, now: datetime, n: int = STORED) -> RecommendationSet | None:
    """Train, store and swap in a new set for one shop; None when the shop has no purchases."""
    started = time.perf_counter()
    purchases, quantities, orders = _load(session, shop_id)
    if len(purchases.item) == 0:
        return None
    today = _day(now)
    choice = None
    if orders >= MIN_ORDERS_FOR_MODELS and purchases.n_customers >= MIN_CUSTOMERS_FOR_SELECTION:
        choice = choose_model(purchases)
    model = choice.factory().fit(purchases, today) if choice else \
        CategoryPopularity(categories=_categories(session, shop_id, purchases)).fit(purchases, today)
    timing = RepurchaseTiming().fit(purchases)
    new_set = RecommendationSet(shop_id=shop_id, model=model.name, trained_at=now,
                                validation_recall=choice.validation_recall if choice else 0.0,
                                customers=purchases.n_customers, items=purchases.n_items)
    session.add(new_set)
    session.flush()
    rows = [*_customer_rows(purchases, model, timing, today, n), *_due_rows(purchases, timing, today, n),
            *_item_rows(purchases, model),
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
        codes = np.arange(start, start + rows.shape[0])
        best = top_k(model.scores(rows, codes), rows, n, overwrite=True)
        for offset, items in enumerate(best):
            customer = start + offset
            due = _due_items(history, last_day, timing, customer, today)
            ranked = [*due.tolist(), *[i for i in items.tolist() if i >= 0]][:n]
            yield "customer", str(purchases.customer_keys[customer]), [int(purchases.item_keys[i]) for i in ranked]


def _due_items(history: sp.csr_matrix, last_day: list[dict[int, int]], timing: RepurchaseTiming, customer: int,
               today: int) -> np.ndarray:
    """The customer's consumables due again today, most overdue (elapsed / their interval) first."""
    owned = history.indices[history.indptr[customer]:history.indptr[customer + 1]]
    if len(owned) == 0:
        return owned
    days = np.array([last_day[customer][i] for i in owned])
    codes = np.full(len(owned), customer)
    due = timing.due(owned, days, today, customers=codes)
    if not due.any():
        return owned[due]
    interval = timing.predict_interval(codes[due], owned[due])
    overdue = (today - days[due]) / np.maximum(np.nan_to_num(interval, nan=1.0), 1.0)
    return owned[due][np.argsort(-overdue, kind="stable")]


def _due_rows(purchases: Purchases, timing: RepurchaseTiming, today: int,
              n: int) -> Iterable[tuple[str, str, list[int]]]:
    """Per customer with something due: their due consumables alone ("due for repurchase")."""
    history = purchases.matrix()
    last_day = _last_purchase_days(purchases)
    for customer in range(purchases.n_customers):
        due = _due_items(history, last_day, timing, customer, today)
        if len(due):
            yield "due", str(purchases.customer_keys[customer]), [int(purchases.item_keys[i]) for i in due[:n]]


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


def _categories(session: Session, shop_id: int, purchases: Purchases) -> np.ndarray:
    categories: dict[int | None, str] = dict(session.execute(
        select(col(Product.id), col(Product.category)).where(col(Product.shop_id) == shop_id)).all())
    return np.array([categories.get(int(key), "") or "" for key in purchases.item_keys], dtype=object)


def _ranking_rows(session: Session, shop_id: int, purchases: Purchases, quantities: np.ndarray,
                  today: int) -> Iterable[tuple[str, str, list[int]]]:
    category_of = _categories(session, shop_id, purchases)
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


def due_many(session: Session, shop: Shop, customer_ids: Sequence[int], n: int, *,
             in_stock_only: bool = True) -> dict[int, list[Product]]:
    """Per customer, the consumables due for repurchase now (most overdue first), visible and in
    stock; customers with nothing due are left out."""
    lists = _lists(session, shop, "due", [str(c) for c in customer_ids])
    wanted = {p for ids in lists.values() for p in ids}
    if not wanted:
        return {}
    products = {p.id: p for p in session.execute(select(Product).where(
        col(Product.shop_id) == shop.id, col(Product.id).in_(wanted), col(Product.visible).is_(True))).scalars()}
    out: dict[int, list[Product]] = {}
    for customer in customer_ids:
        picked = [products[p] for p in lists.get(str(customer), []) if p in products
                  and not (in_stock_only and products[p].stock is not None and (products[p].stock or 0) <= 0)][:n]
        if picked:
            out[customer] = picked
    return out


@dataclass(frozen=True)
class Status:
    """What the console says of a shop's recommendations."""

    model: str
    cold_start: bool
    validation_recall: float
    customers: int
    items: int
    trained_at: datetime
    orders: int  # the shop's orders now (the cold start ends at min_orders)
    min_orders: int = MIN_ORDERS_FOR_MODELS


def status(session: Session, shop: Shop) -> Status | None:
    """The served set's model, or None before the first training."""
    if shop.recommendation_set_id is None:
        return None
    found = session.get(RecommendationSet, shop.recommendation_set_id)
    if found is None:
        return None
    orders = session.execute(select(func.count()).select_from(Order).where(
        col(Order.shop_id) == shop.id, col(Order.canceled).is_(False), col(Order.customer_id).is_not(None))).scalar()
    return Status(found.model, found.model == COLD_START, found.validation_recall, found.customers, found.items,
                  found.trained_at, int(orders or 0))


def similar_products(session: Session, shop: Shop, product_id: int, n: int) -> list[int]:
    """Products bought together with this one (stored per item)."""
    return _lists(session, shop, "item", [str(product_id)]).get(str(product_id), [])[:n]
