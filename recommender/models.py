"""Recommendation models on one interface: fit on a customer × item matrix, score customers.

- Popularity: recent-weighted purchase counts (half-life in days).
- ItemKNN: cosine similarity between item columns with shrinkage, top-k neighbours per item.
- EASE: closed-form linear autoencoder (Steck 2019); items beyond `max_items` fall back to popularity.
- Blend: α · ItemKNN + (1 − α) · Popularity on rank-normalised scores.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from recommender.data import Purchases

__all__ = ["Model", "Popularity", "ItemKNN", "EASE", "Blend"]


class Model:
    """fit() on training purchases up to `today`; scores() for a batch of customer rows."""

    name = "model"

    def fit(self, purchases: Purchases, today: int) -> Model:
        raise NotImplementedError

    def scores(self, history: sp.csr_matrix) -> np.ndarray:
        """Dense scores (batch × items) for customers whose binary histories are the rows given."""
        raise NotImplementedError

    def similar_items(self, item: int, n: int) -> np.ndarray:
        """Items most like `item` (bought together); popularity order when the model has none."""
        raise NotImplementedError


@dataclass
class Popularity(Model):
    half_life_days: float = 90.0
    name: str = "popularity"
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    def fit(self, purchases: Purchases, today: int) -> Popularity:
        age = np.maximum(today - purchases.day, 0).astype(np.float64)
        decay = np.power(0.5, age / self.half_life_days)
        self.weights = np.bincount(purchases.item, weights=decay, minlength=purchases.n_items).astype(np.float32)
        return self

    def scores(self, history: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.weights, (history.shape[0], len(self.weights))).copy()

    def similar_items(self, item: int, n: int) -> np.ndarray:
        order = np.argsort(-self.weights, kind="stable")
        return order[order != item][:n]


@dataclass
class ItemKNN(Model):
    neighbours: int = 100
    shrink: float = 10.0
    name: str = "item_knn"
    similarity: sp.csr_matrix | None = None

    def fit(self, purchases: Purchases, today: int) -> ItemKNN:
        x = purchases.matrix().tocsc()
        counts = np.asarray(x.sum(axis=0)).ravel()
        co = (x.T @ x).tocsr().astype(np.float32)
        co.setdiag(0)
        co.eliminate_zeros()
        norms = np.sqrt(counts).astype(np.float32)
        co = co.tocoo()
        co.data = co.data / (norms[co.row] * norms[co.col] + self.shrink)
        self.similarity = _top_k_per_row(co.tocsr(), self.neighbours)
        return self

    def scores(self, history: sp.csr_matrix) -> np.ndarray:
        assert self.similarity is not None
        return np.asarray((history @ self.similarity).todense(), dtype=np.float32)

    def similar_items(self, item: int, n: int) -> np.ndarray:
        assert self.similarity is not None
        row = self.similarity.getrow(item)
        return row.indices[np.argsort(-row.data, kind="stable")][:n]


@dataclass
class EASE(Model):
    l2: float = 200.0
    max_items: int = 2000  # the inverse costs items³; larger catalogues use their head only
    name: str = "ease"
    columns: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    fallback: Popularity = field(default_factory=Popularity)
    n_items: int = 0

    def fit(self, purchases: Purchases, today: int) -> EASE:
        self.fallback = Popularity().fit(purchases, today)
        self.n_items = purchases.n_items
        counts = np.bincount(purchases.item, minlength=purchases.n_items)
        self.columns = np.sort(np.argsort(-counts, kind="stable")[: self.max_items])
        x = purchases.matrix()[:, self.columns]
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.l2
        p = np.linalg.inv(gram)
        b = p / (-np.diag(p))
        b[np.diag_indices_from(b)] = 0.0
        self.weights = b.astype(np.float32)
        return self

    def scores(self, history: sp.csr_matrix) -> np.ndarray:
        # Catalogue tail: tiny popularity scores rank below any EASE signal.
        out = self.fallback.scores(history) * 1e-6
        out[:, self.columns] += np.asarray(history[:, self.columns] @ self.weights, dtype=np.float32)
        return out

    def similar_items(self, item: int, n: int) -> np.ndarray:
        where = np.searchsorted(self.columns, item)
        if where >= len(self.columns) or self.columns[where] != item:
            return self.fallback.similar_items(item, n)
        column = self.weights[where]
        order = np.argsort(-column, kind="stable")
        return self.columns[order[column[order] > 0]][:n]


@dataclass
class Blend(Model):
    alpha: float = 0.5
    name: str = "blend"
    knn: ItemKNN = field(default_factory=ItemKNN)
    popularity: Popularity = field(default_factory=Popularity)

    def fit(self, purchases: Purchases, today: int) -> Blend:
        self.knn.fit(purchases, today)
        self.popularity.fit(purchases, today)
        return self

    def scores(self, history: sp.csr_matrix) -> np.ndarray:
        knn = self.knn.scores(history)  # a fresh array: scaled in place to keep memory flat
        top = knn.max(axis=1, keepdims=True)
        knn *= self.alpha / np.where(top > 0, top, 1.0)
        pop = self.popularity.weights
        knn += ((1 - self.alpha) / max(float(pop.max(initial=0.0)), 1e-12)) * pop
        return knn

    def similar_items(self, item: int, n: int) -> np.ndarray:
        return self.knn.similar_items(item, n)


def _top_k_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of each row (bounded memory for large catalogues)."""
    rows, cols, vals = [], [], []
    for r in range(matrix.shape[0]):
        start, end = matrix.indptr[r], matrix.indptr[r + 1]
        if end == start:
            continue
        data, idx = matrix.data[start:end], matrix.indices[start:end]
        if end - start > k:
            keep = np.argpartition(-data, k)[:k]
            data, idx = data[keep], idx[keep]
        rows.append(np.full(len(idx), r, dtype=np.int32))
        cols.append(idx)
        vals.append(data)
    if not rows:
        # SciPy's stubs type an empty matrix of a given shape as float64 only.
        return sp.csr_matrix(matrix.shape, dtype=np.float32)  # type: ignore[arg-type]
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=matrix.shape)
