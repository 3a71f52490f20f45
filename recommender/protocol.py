"""The fixed evaluation protocol (so numbers are comparable between runs and models).

Customers with purchases on at least two distinct dates are evaluated. The items bought on a
customer's last date and never before are the test set; everything earlier is training.
Recommendations exclude items the customer bought in training. recall@k =
|top-k ∩ test| / min(k, |test|), averaged over customers with a non-empty test set.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recommender.data import Purchases

__all__ = ["Split", "leave_last_date_out", "evaluate_scores", "per_customer", "top_k"]


@dataclass(frozen=True)
class Split:
    train: Purchases
    customers: np.ndarray  # evaluated customers (≥ 2 distinct dates, non-empty test)
    test: sp.csr_matrix  # customer × item: new items on the last date
    rebought: sp.csr_matrix  # customer × item: items on the last date bought before too
    last_day: np.ndarray  # per customer code: the held-out date (−1 if not evaluated)


def leave_last_date_out(purchases: Purchases) -> Split:
    """Hold out each eligible customer's last purchase date."""
    n_c = purchases.n_customers
    last = np.full(n_c, -1, dtype=np.int64)
    np.maximum.at(last, purchases.customer, purchases.day)
    first = np.full(n_c, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, purchases.customer, purchases.day)
    eligible = first < last  # at least two distinct dates
    held = eligible[purchases.customer] & (purchases.day == last[purchases.customer])
    train = purchases.subset(~held)
    before = train.matrix()
    held_rows = purchases.subset(held).matrix()
    rebought = held_rows.multiply(before).tocsr()
    test = (held_rows - rebought).tocsr()
    test.eliminate_zeros()
    customers = np.flatnonzero(np.diff(test.indptr) > 0)
    return Split(train=train, customers=customers, test=test, rebought=rebought,
                 last_day=np.where(eligible, last, -1))


def top_k(scores: np.ndarray, exclude: sp.csr_matrix, k: int, *, overwrite: bool = False) -> np.ndarray:
    """Top-k item codes per row, excluding the items marked in `exclude`; ties by item code.

    With overwrite=True the caller's `scores` array is reused (excluded cells set to −inf).
    """
    if not overwrite:
        scores = scores.copy()
    rows, cols = exclude.nonzero()
    scores[rows, cols] = -np.inf
    k = min(k, scores.shape[1])
    part = np.argpartition(scores, scores.shape[1] - k, axis=1)[:, -k:]  # no negated copy
    picked = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -picked), axis=1)
    result = np.take_along_axis(part, order, axis=1)
    return np.where(np.take_along_axis(picked, order, axis=1) == -np.inf, -1, result)


def evaluate_scores(recommended: np.ndarray, truth: sp.csr_matrix, k: int) -> tuple[float, float]:
    """Mean recall@k and NDCG@k over rows; `recommended` is rows × k item codes (−1 = none)."""
    recalls, ndcgs = per_customer(recommended, truth, k)
    return float(np.mean(recalls)) if len(recalls) else 0.0, float(np.mean(ndcgs)) if len(ndcgs) else 0.0


def per_customer(recommended: np.ndarray, truth: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Recall@k and NDCG@k of each row with a non-empty truth."""
    recalls, ndcgs = [], []
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    for row, items in enumerate(recommended):
        wanted = truth.indices[truth.indptr[row]:truth.indptr[row + 1]]
        if len(wanted) == 0:
            continue
        hits = np.isin(items, wanted)
        ideal = discounts[: min(k, len(wanted))].sum()
        recalls.append(hits.sum() / min(k, len(wanted)))
        ndcgs.append(float((hits * discounts[: len(items)]).sum() / ideal))
    return np.array(recalls), np.array(ndcgs)
