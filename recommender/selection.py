"""Choose, per shop, the model to serve: the best recall on a validation split of its own history."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from recommender.data import Purchases
from recommender.models import EASE, TIFUKNN, Blend, ItemKNN, Model, Popularity, RecentEASE, Sequential
from recommender.protocol import Split, leave_last_date_out, per_customer, top_k

__all__ = ["CANDIDATES", "SIMPLICITY", "Choice", "Scored", "choose_model", "recommend_top_k"]

MAX_VALIDATION_CUSTOMERS = 2000
MIN_RELATIVE_GAIN = 0.02

# Each family with a small grid; the grid point is chosen on validation, never on the test set.
CANDIDATES: dict[str, list[Callable[[], Model]]] = {
    "popularity": [partial(Popularity, half_life_days=90), partial(Popularity, half_life_days=100_000)],
    "item_knn": [partial(ItemKNN, shrink=10), partial(ItemKNN, shrink=100)],
    "ease": [partial(EASE, l2=l2) for l2 in (50, 150, 400, 1000, 2500)],
    "blend": [partial(Blend, alpha=a) for a in (0.2, 0.5, 0.8)],
    # The time-aware families (issue 17): small grids, the half-lives in days.
    "recent_ease": [partial(RecentEASE, gram_half_life=h, l2=l2) for h in (15, 45) for l2 in (100, 400)],
    "tifu_knn": [partial(TIFUKNN, half_life_days=30, alpha=a) for a in (0.5, 0.9)],
    "sequential": [partial(Sequential, gamma=g) for g in (0.05, 0.2)],
}
# Simplest first: among the candidates within noise of the best, the first in this order is served.
SIMPLICITY = tuple(CANDIDATES)


@dataclass(frozen=True)
class Scored:
    family: str
    factory: Callable[[], Model]
    recalls: np.ndarray  # per validation customer, paired across candidates

    @property
    def mean(self) -> float:
        return float(self.recalls.mean()) if len(self.recalls) else 0.0


@dataclass(frozen=True)
class Choice:
    family: str
    factory: Callable[[], Model]
    validation_recall: float
    seconds: float
    scored: tuple[Scored, ...] = ()

    def best_of(self, family: str) -> Scored | None:
        """The family's best grid point on validation (for reports that show every family)."""
        mine = [s for s in self.scored if s.family == family]
        return max(mine, key=lambda s: s.mean) if mine else None


def recommend_top_k(model: Model, purchases: Purchases, customers: np.ndarray, k: int,
                    batch: int = 2000) -> np.ndarray:
    """Top-k unseen items for the given customer codes, scored in bounded batches."""
    history = purchases.matrix()
    out = np.full((len(customers), k), -1, dtype=np.int64)  # −1: fewer items than k
    for start in range(0, len(customers), batch):
        codes = customers[start:start + batch]
        rows = history[codes]
        best = top_k(model.scores(rows, codes), rows, k, overwrite=True)
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
    """Best (family, grid point) by validation recall@k, guarded against choosing noise:

    - a model replaces the best popularity only if its paired gain is beyond noise (two standard
      errors) and worth having (MIN_RELATIVE_GAIN): on small catalogues popularity is strong and
      cheap, so it stays;
    - with some twenty candidates the top validation score is biased upwards, so the served one
      is the simplest family (SIMPLICITY order) whose best is within one paired standard error of
      the best of all.

    The validation split is the evaluation protocol applied to the training history itself,
    so the choice never sees the test set. Large shops validate on a sample of customers.
    """
    started = time.perf_counter()
    split = leave_last_date_out(purchases)
    customers = split.customers
    if len(customers) > MAX_VALIDATION_CUSTOMERS:
        customers = np.sort(np.random.default_rng(seed).choice(customers, MAX_VALIDATION_CUSTOMERS, replace=False))
    scored = [Scored(name, factory, _validation_recalls(factory, split, customers, k))
              for name in families for factory in CANDIDATES[name]]
    best = max(scored, key=lambda s: s.mean)
    if len(best.recalls) > 1:
        for family in sorted({s.family for s in scored}, key=SIMPLICITY.index):
            mine = max((s for s in scored if s.family == family), key=lambda s: s.mean)
            gap = best.recalls - mine.recalls
            if gap.mean() <= gap.std(ddof=1) / np.sqrt(len(gap)):
                best = mine
                break
    baseline = [s for s in scored if s.family == "popularity"]
    if baseline and best.family != "popularity" and len(best.recalls) > 1:
        pop = max(baseline, key=lambda s: s.mean)
        gain = best.recalls - pop.recalls
        noise = 2 * gain.std(ddof=1) / np.sqrt(len(gain))
        if gain.mean() <= max(noise, MIN_RELATIVE_GAIN * pop.mean):
            best = pop
    return Choice(best.family, best.factory, best.mean, time.perf_counter() - started, tuple(scored))
