"""Choose, per shop, the model to serve: the best recall on a validation split of its own history."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from recommender.data import Purchases
from recommender.models import EASE, Blend, ItemKNN, Model, Popularity
from recommender.protocol import Split, leave_last_date_out, per_customer, top_k

__all__ = ["CANDIDATES", "Choice", "choose_model", "recommend_top_k"]

MAX_VALIDATION_CUSTOMERS = 2000
MIN_RELATIVE_GAIN = 0.02

# Each family with a small grid; the grid point is chosen on validation, never on the test set.
CANDIDATES: dict[str, list[Callable[[], Model]]] = {
    "popularity": [partial(Popularity, half_life_days=90), partial(Popularity, half_life_days=100_000)],
    "item_knn": [partial(ItemKNN, shrink=10), partial(ItemKNN, shrink=100)],
    "ease": [partial(EASE, l2=50), partial(EASE, l2=250), partial(EASE, l2=1000)],
    "blend": [partial(Blend, alpha=a) for a in (0.2, 0.5, 0.8)],
}


@dataclass(frozen=True)
class Choice:
    family: str
    factory: Callable[[], Model]
    validation_recall: float
    seconds: float


def recommend_top_k(model: Model, purchases: Purchases, customers: np.ndarray, k: int,
                    batch: int = 2000) -> np.ndarray:
    """Top-k unseen items for the given customer codes, scored in bounded batches."""
    history = purchases.matrix()
    out = np.full((len(customers), k), -1, dtype=np.int64)  # −1: fewer items than k
    for start in range(0, len(customers), batch):
        rows = history[customers[start:start + batch]]
        best = top_k(model.scores(rows), rows, k, overwrite=True)
        out[start:start + batch, : best.shape[1]] = best
    return out


def _validation_recalls(factory: Callable[[], Model], split: Split, customers: np.ndarray, k: int) -> np.ndarray:
    """Per-customer validation recall@k (paired across candidates: same customers, same order)."""
    if len(customers) == 0:
        return np.zeros(0)
    today = int(split.train.day.max()) if len(split.train.day) else 0
    model = factory().fit(split.train, today)
    recalls, _ = per_customer(recommend_top_k(model, split.train, customers, k), split.test[customers], k)
    return recalls


def choose_model(purchases: Purchases, k: int = 10, families: tuple[str, ...] = tuple(CANDIDATES),
                 seed: int = 0) -> Choice:
    """Best (family, grid point) by validation recall@k, but a model replaces the best
    popularity only if its paired gain is beyond noise (two standard errors) and worth having
    (MIN_RELATIVE_GAIN): on small catalogues popularity is strong and cheap, so it stays.

    The validation split is the evaluation protocol applied to the training history itself,
    so the choice never sees the test set. Large shops validate on a sample of customers.
    """
    started = time.perf_counter()
    split = leave_last_date_out(purchases)
    customers = split.customers
    if len(customers) > MAX_VALIDATION_CUSTOMERS:
        customers = np.sort(np.random.default_rng(seed).choice(customers, MAX_VALIDATION_CUSTOMERS, replace=False))
    scored = [(name, factory, _validation_recalls(factory, split, customers, k))
              for name in families for factory in CANDIDATES[name]]
    name, factory, recalls = max(scored, key=lambda s: s[2].mean() if len(s[2]) else 0.0)
    baseline = [s for s in scored if s[0] == "popularity"]
    if baseline and name != "popularity" and len(recalls) > 1:
        pop_name, pop_factory, pop_recalls = max(baseline, key=lambda s: s[2].mean())
        gain = recalls - pop_recalls
        noise = 2 * gain.std(ddof=1) / np.sqrt(len(gain))
        if gain.mean() <= max(noise, MIN_RELATIVE_GAIN * pop_recalls.mean()):
            name, factory, recalls = pop_name, pop_factory, pop_recalls
    mean = float(recalls.mean()) if len(recalls) else 0.0
    return Choice(name, factory, mean, time.perf_counter() - started)
