"""Recommendation models on one interface: fit on a customer × item matrix, score customers.

- Popularity: recent-weighted purchase counts (half-life in days).
- ItemKNN: cosine similarity between item columns with shrinkage, top-k neighbours per item.
- EASE: closed-form linear autoencoder (Steck 2019); items beyond `max_items` fall back to popularity.
- Blend: α · ItemKNN + (1 − α) · Popularity on rank-normalised scores.

Models that use time (issue 17; shop data carries time, repeats and sequence, plain EASE ignores them):
- RecentEASE: EASE whose item-item statistics weigh each customer's purchase of an item by its
  recency (half-life in days: items come and go), scored on the customer's recency-weighted history.
- TIFUKNN: time-decayed customer vectors (TIFU-KNN, Hu et al. SIGIR 2020, with decay by age in days
  instead of basket groups): the mean of the nearest customers' vectors, blended with a
  recency-weighted item-item cosine on the customer's own decayed history.
- Sequential: RecentEASE plus what is bought after the customer's latest basket (a sparse,
  row-normalised transition matrix from each customer's consecutive baskets).

`scores(history, customers)`: the time models read the customer codes (the rows' customers in
the purchases they were fitted on) for the recency-weighted history and the latest basket; with
no codes they fall back to the binary history given.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from recommender.data import Purchases

__all__ = ["Model", "Popularity", "CategoryPopularity", "ItemKNN", "EASE", "Blend", "RecentEASE", "TIFUKNN", "Sequential"]


class Model:
    """fit() on training purchases up to `today`; scores() for a batch of customer rows."""

    name = "model"

    def fit(self, purchases: Purchases, today: int) -> Model:
        raise NotImplementedError

    def scores(self, history: sp.csr_matrix, customers: np.ndarray | None = None) -> np.ndarray:
        """Dense scores (batch × items) for customers whose binary histories are the rows given;
        `customers` (their codes in the fitted purchases) lets a model use what it kept of them."""
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

    def scores(self, history: sp.csr_matrix, customers: np.ndarray | None = None) -> np.ndarray:
        return np.broadcast_to(self.weights, (history.shape[0], len(self.weights))).copy()

    def similar_items(self, item: int, n: int) -> np.ndarray:
        order = np.argsort(-self.weights, kind="stable")
        return order[order != item][:n]


@dataclass
class CategoryPopularity(Popularity):
    """Cold start: the bestsellers of the categories a customer buys from, most-bought category
    first, then the rest of the shop by popularity. `categories` names each item code's category
    ("" for none)."""

    categories: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    name: str = "category_popularity"
    category_codes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def fit(self, purchases: Purchases, today: int) -> CategoryPopularity:
        super().fit(purchases, today)
        names = np.asarray(self.categories, dtype=object)
        if len(names) != purchases.n_items:
            names = np.full(purchases.n_items, "", dtype=object)
        keys, codes = np.unique(names.astype(str), return_inverse=True)
        codes = codes.astype(np.int64)
        codes[keys[codes] == ""] = -1  # no category: ranked by popularity only
        self.category_codes = codes
        return self

    def scores(self, history: sp.csr_matrix, customers: np.ndarray | None = None) -> np.ndarray:
        top = float(self.weights.max(initial=0.0))
        out = super().scores(history) / (top if top > 0 else 1.0)  # popularity in [0, 1]
        n_categories = int(self.category_codes.max(initial=-1)) + 1
        if n_categories == 0 or history.shape[0] == 0:
            return out
        labelled = self.category_codes >= 0
        to_category = sp.csr_matrix((np.ones(int(labelled.sum()), dtype=np.float32),
                                     (np.flatnonzero(labelled), self.category_codes[labelled])),
                                    shape=(len(self.category_codes), n_categories))
        bought = np.asarray((history.astype(np.float32) @ to_category).todense())  # purchases per category
        bonus = bought[:, np.maximum(self.category_codes, 0)] * labelled  # per item: its category's count
        out += 2.0 * bonus  # any purchase in a category (≥ 1 → +2) lifts its items above the rest
        return out


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

    def scores(self, history: sp.csr_matrix, customers: np.ndarray | None = None) -> np.ndarray:
        assert self.similarity is not None
        return np.asarray((history @ self.similarity).todense(), dtype=np.float32)

    def similar_items(self, item: int, n: int) -> np.ndarray:
        assert self.similarity is not None
        row = self.similarity.getrow(item)
        return row.indices[np.argsort(-row.data, kind="stable")][:n]


@dataclass
class EASE(Model):
    l2: float = 200.0
    max_items: int = 4000  # the inverse costs items³ (4000² float32 = 64 MB); larger catalogues use their head
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
        self.weights = _ease_weights((x.T @ x).toarray().astype(np.float32), self.l2)
        return self

    def scores(self, history: sp.csr_matrix, customers: np.ndarray | None = None) -> np.ndarray:
        # Catalogue tail: tiny popularity scores rank below any EASE signal.
        out = self.fallback.scores(history) * 1e-6
        out[:, self.columns] += np.asarray(self._inputs(history, customers)[:, self.columns] @ self.weights,
                                           dtype=np.float32)
        return out

    def _inputs(self, history: sp.csr_matrix, customers: np.ndarray | None) -> sp.csr_matrix:
        return history

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

    def scores(self, history: sp.csr_matrix, customers: np.ndarray | None = None) -> np.ndarray:
        knn = self.knn.scores(history, customers)  # a fresh array: scaled in place to keep memory flat
        top = knn.max(axis=1, keepdims=True)
        knn *= self.alpha / np.where(top > 0, top, 1.0)
        pop = self.popularity.weights
        knn += ((1 - self.alpha) / max(float(pop.max(initial=0.0)), 1e-12)) * pop
        return knn

    def similar_items(self, item: int, n: int) -> np.ndarray:
        return self.knn.similar_items(item, n)


@dataclass
class RecentEASE(EASE):
    """EASE on recency-weighted statistics: a purchase of age a days counts 0.5^(a/gram_half_life)
    in the item-item Gram matrix (√ of it per customer × item cell, so a pair counts the product),
    and the customer's history is weighted 0.5^(a/input_half_life)."""

    gram_half_life: float = 15.0
    input_half_life: float = 120.0
    name: str = "recent_ease"
    inputs: sp.csr_matrix | None = None

    def fit(self, purchases: Purchases, today: int) -> RecentEASE:
        self.fallback = Popularity(half_life_days=self.gram_half_life).fit(purchases, today)
        self.n_items = purchases.n_items
        weighted = purchases.recency_matrix(today, self.gram_half_life)
        weighted.data = np.sqrt(weighted.data)
        mass = np.asarray(weighted.multiply(weighted).sum(axis=0)).ravel()  # recent buyers per item
        self.columns = np.sort(np.argsort(-mass, kind="stable")[: self.max_items])
        x = weighted[:, self.columns]
        self.weights = _ease_weights((x.T @ x).toarray().astype(np.float32), self.l2)
        self.inputs = purchases.recency_matrix(today, self.input_half_life)
        return self

    def _inputs(self, history: sp.csr_matrix, customers: np.ndarray | None) -> sp.csr_matrix:
        if customers is None or self.inputs is None or len(customers) != history.shape[0] \
                or (len(customers) and int(customers.max()) >= self.inputs.shape[0]):
            return history
        return self.inputs[customers]


@dataclass
class TIFUKNN(Model):
    """Time-decayed customer neighbourhoods plus a time-decayed item neighbourhood.

    A customer's vector weighs each item by 0.5^(age/half_life) of every purchase of it (summed,
    so repeats count), L2-normalised. Neighbours come from the `pool` most recently active
    customers (bounded memory for large shops); the prediction is
    α · mean of the nearest `neighbours` vectors + (1 − α) · own vector @ item cosine
    (recency-weighted co-purchases, top-100 per item), both scaled to [0, 1] per customer.
    """

    half_life_days: float = 30.0
    neighbours: int = 50
    alpha: float = 0.5
    pool: int = 10_000
    name: str = "tifu_knn"
    vectors: sp.csr_matrix | None = None
    pool_vectors: sp.csr_matrix | None = None
    pool_position: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    item_similarity: sp.csr_matrix | None = None

    def fit(self, purchases: Purchases, today: int) -> TIFUKNN:
        age = np.maximum(today - purchases.day.astype(np.int64), 0)
        weight = np.power(0.5, age / self.half_life_days).astype(np.float32)
        v = purchases.matrix(weights=weight)
        norms = np.sqrt(np.asarray(v.multiply(v).sum(axis=1)).ravel())
        self.vectors = (sp.diags((1.0 / np.maximum(norms, 1e-12)).astype(np.float32)) @ v).tocsr()
        last = np.full(purchases.n_customers, -1, dtype=np.int64)
        np.maximum.at(last, purchases.customer, purchases.day.astype(np.int64))
        members = np.sort(np.argsort(-last, kind="stable")[: self.pool])
        self.pool_vectors = self.vectors[members]
        self.pool_position = np.full(purchases.n_customers, -1, dtype=np.int64)
        self.pool_position[members] = np.arange(len(members))
        cells = v.copy()
        cells.data = np.sqrt(cells.data)
        co = (cells.T @ cells).tocsr()
        diag = np.sqrt(np.maximum(co.diagonal(), 1e-12)).astype(np.float32)
        co.setdiag(0)
        co.eliminate_zeros()
        co = co.tocoo()
        co.data = (co.data / (diag[co.row] * diag[co.col])).astype(np.float32)
        self.item_similarity = _top_k_per_row(co.tocsr(), 100)
        return self

    def scores(self, history: sp.csr_matrix, customers: np.ndarray | None = None) -> np.ndarray:
        assert self.vectors is not None and self.pool_vectors is not None and self.item_similarity is not None
        known = customers is not None and len(customers) == history.shape[0] and \
            (len(customers) == 0 or int(customers.max()) < self.vectors.shape[0])
        own = self.vectors[customers] if known and customers is not None else _row_normalised(history)
        items = np.asarray((own @ self.item_similarity).todense(), dtype=np.float32)
        _scale_rows(items)
        items *= 1 - self.alpha
        if self.alpha == 0 or self.pool_vectors.shape[0] == 0:
            return items
        users = np.zeros_like(items)
        for start in range(0, own.shape[0], 500):  # bounded: 500 × pool similarities at a time
            chunk = slice(start, start + 500)
            codes = customers[chunk] if known and customers is not None else None
            users[chunk] = self._neighbour_scores(own[chunk], codes)
        _scale_rows(users)
        users *= self.alpha
        users += items
        return users

    def _neighbour_scores(self, own: sp.csr_matrix, customers: np.ndarray | None) -> np.ndarray:
        assert self.pool_vectors is not None
        similarity = np.asarray((own @ self.pool_vectors.T).todense(), dtype=np.float32)
        if customers is not None:  # a customer is not their own neighbour
            where = self.pool_position[customers]
            rows = np.flatnonzero(where >= 0)
            similarity[rows, where[rows]] = 0.0
        k = min(self.neighbours, similarity.shape[1])
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        weights = np.take_along_axis(similarity, nearest, axis=1)
        pick = sp.csr_matrix((weights.ravel(), (np.repeat(np.arange(len(weights)), k), nearest.ravel())),
                             shape=similarity.shape)
        return np.asarray((pick @ self.pool_vectors).todense(), dtype=np.float32)

    def similar_items(self, item: int, n: int) -> np.ndarray:
        assert self.item_similarity is not None
        row = self.item_similarity.getrow(item)
        return row.indices[np.argsort(-row.data, kind="stable")][:n]


@dataclass
class Sequential(Model):
    """RecentEASE + γ · what follows the customer's latest basket.

    Transition counts from each basket to the same customer's next one (basket = one day's
    purchases), divided by the source item's basket count + `shrink`, top `follow` per item.
    """

    gamma: float = 0.1
    shrink: float = 10.0
    follow: int = 50
    l2: float = 100.0
    gram_half_life: float = 15.0
    name: str = "sequential"
    base: RecentEASE | None = None
    transitions: sp.csr_matrix | None = None
    latest: sp.csr_matrix | None = None

    def fit(self, purchases: Purchases, today: int) -> Sequential:
        self.base = RecentEASE(l2=self.l2, gram_half_life=self.gram_half_life).fit(purchases, today)
        baskets, owner, _ = purchases.baskets()
        nxt = np.flatnonzero(owner[1:] == owner[:-1])  # basket b is followed by b + 1
        counts = (baskets[nxt].T @ baskets[nxt + 1]).tocsr().astype(np.float32)
        counts.setdiag(0)
        counts.eliminate_zeros()
        source = np.asarray(baskets.sum(axis=0)).ravel().astype(np.float32)
        counts = (sp.diags(1.0 / (source + self.shrink)) @ counts).tocsr()
        self.transitions = _top_k_per_row(counts, self.follow)
        last = np.full(purchases.n_customers, -1, dtype=np.int64)
        last[owner] = np.arange(len(owner))  # baskets are in (customer, day) order: the last one wins
        has = last >= 0
        rows = baskets[np.maximum(last, 0)]
        self.latest = (sp.diags(has.astype(np.float32)) @ rows).tocsr()
        return self

    def scores(self, history: sp.csr_matrix, customers: np.ndarray | None = None) -> np.ndarray:
        assert self.base is not None and self.transitions is not None and self.latest is not None
        out = self.base.scores(history, customers)
        if customers is None or len(customers) != history.shape[0] or \
                (len(customers) and int(customers.max()) >= self.latest.shape[0]):
            return out
        _scale_rows(out)
        after = np.asarray((self.latest[customers] @ self.transitions).todense(), dtype=np.float32)
        _scale_rows(after)
        after *= self.gamma
        out += after
        return out

    def similar_items(self, item: int, n: int) -> np.ndarray:
        assert self.base is not None
        return self.base.similar_items(item, n)


def _ease_weights(gram: np.ndarray, l2: float) -> np.ndarray:
    """B = I − P · diag(1/P_jj) with P = (G + λI)⁻¹ and a zero diagonal (Steck 2019), in place:
    G + λI is symmetric positive definite, so a float32 Cholesky inverse works in G's own memory
    (NumPy's inv would compute in float64 beside it: 4,000 items cost ~380 MB more)."""
    gram[np.diag_indices_from(gram)] += l2
    p = _spd_inverse(np.ascontiguousarray(gram, dtype=np.float32))
    p /= -np.diag(p)
    np.fill_diagonal(p, 0.0)
    return p


def _spd_inverse(a: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric positive definite C-ordered float32 matrix, overwriting it."""
    factor, info = lapack.spotrf(a.T, lower=False, overwrite_a=True, clean=False)  # a.T: the same memory, F-order
    if info != 0:  # only a λ ≤ 0 on a singular Gram gets here
        raise np.linalg.LinAlgError(f"Gram + λI is not positive definite (LAPACK info {info}): use λ > 0")
    inverse, info = lapack.spotri(factor, lower=False, overwrite_c=True)
    p: np.ndarray = inverse.T  # C-ordered view; its lower triangle holds the result
    n = len(p)
    for start in range(0, n, 512):  # mirror the lower triangle into the upper, a block of rows at a time
        end = min(start + 512, n)
        p[start:end, end:] = p[end:, start:end].T
        block = p[start:end, start:end]
        p[start:end, start:end] = np.tril(block) + np.tril(block, -1).T
    return p


def _row_normalised(m: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    return (sp.diags((1.0 / np.maximum(norms, 1e-12)).astype(np.float32)) @ m.astype(np.float32)).tocsr()


def _scale_rows(scores: np.ndarray) -> None:
    """Min-max per row to [0, 1], in place (a constant row becomes 0)."""
    low = scores.min(axis=1, keepdims=True)
    scores -= low
    high = scores.max(axis=1, keepdims=True)
    scores /= np.where(high > 0, high, 1.0)


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
