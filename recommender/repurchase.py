"""Repurchase timing: when will a customer buy a consumable again, and is it due now?

An item is a consumable when enough of its buyers bought it again. The next purchase of an
item a customer buys repeatedly is predicted from three medians of log intervals, shrunk
towards each other by how much evidence each has (a small hierarchical model):

    log interval(c, i) = item(i) + tempo(c) + w · (pair(c, i) − item(i) − tempo(c)),
    w = n(c, i) / (n(c, i) + pair_shrink)

- item(i): the median log gap between two purchases of i by one customer, over all customers
  (k gaps), pulled towards the shop-wide median by item_shrink / (k + item_shrink);
- tempo(c): how much faster or slower the customer re-buys than usual — the median over all
  their gaps of (log gap − item), times m / (m + tempo_shrink) for their m gaps;
- the two shrinkages are chosen per shop on the customers' own last repeats in the training
  history (an inner split), so a shop of habits trusts the customer, a noisy one the item;
- pair(c, i): the median log gap of the customer's own purchases of i (n gaps).

`evaluate_timing` measures it on held-out repeat purchases (each repeatedly-bought pair's
last purchase) as mean absolute error in days, beside the baselines "the customer's median
interval" (their own gaps for that item) and "the item's median interval".
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recommender.data import Purchases

__all__ = ["RepurchaseTiming", "TimingError", "evaluate_timing", "repeat_gaps"]


def repeat_gaps(purchases: Purchases) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(customer, item, day, gap) of every repeat purchase: distinct days of one customer and
    item, each with the days since that customer's previous purchase of the item."""
    triples = np.unique(np.stack([purchases.customer.astype(np.int64), purchases.item.astype(np.int64),
                                  purchases.day.astype(np.int64)]), axis=1)
    customer, item, day = triples
    same = (customer[1:] == customer[:-1]) & (item[1:] == item[:-1])
    return customer[1:][same], item[1:][same], day[1:][same], (day[1:] - day[:-1])[same]


def _group_medians(keys: np.ndarray, values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per key in range(size): the median of its values (nan when none) and how many there are."""
    order = np.lexsort((values, keys))
    keys, values = keys[order], values[order]
    counts = np.bincount(keys, minlength=size)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    medians = np.full(size, np.nan)
    has = counts > 0
    low = starts[has] + (counts[has] - 1) // 2
    high = starts[has] + counts[has] // 2
    medians[has] = (values[low] + values[high]) / 2
    return medians, counts


@dataclass
class RepurchaseTiming:
    """Which items are consumables, each customer's predicted interval, and what is due."""

    min_repeat_customers: int = 3
    min_repeat_share: float = 0.05
    due_fraction: float = 0.8  # due from 80 % of the predicted interval …
    overdue_factor: float = 3.0  # … until 3× it (then the habit is probably gone)
    pair_shrink: float = 2.0
    tempo_shrink: float = 3.0
    item_shrink: float = 0.0  # towards the shop-wide median gap, for items with few repeats
    interval: np.ndarray = field(default_factory=lambda: np.zeros(0))  # days per item; nan = not consumable
    item_log: np.ndarray = field(default_factory=lambda: np.zeros(0))  # median log gap per item (nan: no gap)
    item_count: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    global_log: float = 0.0
    tempo_raw: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per customer: median log residual
    tempo_count: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pair_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # customer·items + item
    pair_log: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pair_count: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    n_items: int = 0

    def fit(self, purchases: Purchases, tune: bool = True) -> RepurchaseTiming:
        """Fit the medians; with `tune`, choose the two shrinkages on the customers' own last
        repeats inside this history (so the test never shapes them): a shop where intervals
        are habits trusts the customer's own gaps, one where they are noise trusts the item's."""
        n_items, n_customers = purchases.n_items, purchases.n_customers
        self.n_items = n_items
        customer, item, _, gap = repeat_gaps(purchases)
        item_median, _ = _group_medians(item, gap.astype(np.float64), n_items)
        buyers = np.bincount(np.unique(np.stack([purchases.customer.astype(np.int64),
                                                 purchases.item.astype(np.int64)]), axis=1)[1], minlength=n_items)
        repeaters = np.bincount(np.unique(np.stack([customer, item]), axis=1)[1], minlength=n_items) \
            if len(item) else np.zeros(n_items, dtype=np.int64)
        consumable = (repeaters >= self.min_repeat_customers) & (repeaters >= self.min_repeat_share * np.maximum(buyers, 1))
        self.interval = np.where(consumable, item_median, np.nan)
        if tune:
            self._tune(customer, item, gap, n_customers)
        self._fit_medians(customer, item, gap, n_customers)
        return self

    def _fit_medians(self, customer: np.ndarray, item: np.ndarray, gap: np.ndarray, n_customers: int) -> None:
        log_gap = np.log(np.maximum(gap, 1).astype(np.float64))
        self.item_log, self.item_count = _group_medians(item, log_gap, self.n_items)
        self.global_log = float(np.median(log_gap)) if len(log_gap) else 0.0
        residual = log_gap - self.item_log[item] if len(item) else np.zeros(0)
        tempo, self.tempo_count = _group_medians(customer, residual, n_customers)
        self.tempo_raw = np.nan_to_num(tempo)
        self.pair_keys, inverse = np.unique(customer * self.n_items + item, return_inverse=True)
        self.pair_log, self.pair_count = _group_medians(inverse.ravel(), log_gap, len(self.pair_keys))

    def _tune(self, customer: np.ndarray, item: np.ndarray, gap: np.ndarray, n_customers: int) -> None:
        key = customer * self.n_items + item
        last = np.ones(len(key), dtype=bool)
        last[:-1] = key[1:] != key[:-1]
        _, pair, count = np.unique(key, return_inverse=True, return_counts=True)
        held = last & (count[pair.ravel()] >= 1)  # every pair's last repeat (some then have no own gap left)
        if held.sum() < 30:  # too little to learn from: keep the defaults
            return
        self._fit_medians(customer[~held], item[~held], gap[~held], n_customers)
        truth = gap[held].astype(np.float64)
        best = (np.inf, self.pair_shrink, self.tempo_shrink, self.item_shrink)
        for item_shrink in (0.0, 10.0, 100.0, 1e9):
            for pair_shrink in (0.5, 2.0, 8.0, 32.0, 1e9):
                for tempo_shrink in (1.0, 5.0, 30.0, 1e9):
                    self.pair_shrink, self.tempo_shrink, self.item_shrink = pair_shrink, tempo_shrink, item_shrink
                    predicted = self.predict_interval(customer[held], item[held])
                    error = float(np.abs(np.where(np.isfinite(predicted), predicted, np.median(truth)) - truth).mean())
                    if error < best[0] - 1e-9:
                        best = (error, pair_shrink, tempo_shrink, item_shrink)
        _, self.pair_shrink, self.tempo_shrink, self.item_shrink = best

    def is_consumable(self, item: int) -> bool:
        return bool(np.isfinite(self.interval[item]))

    def predict_interval(self, customers: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Days until the customer buys the item again (nan for an item nobody re-bought)."""
        customers, items = np.asarray(customers, dtype=np.int64), np.asarray(items, dtype=np.int64)
        k = self.item_count[items]
        base = self.global_log + (self.item_log[items] - self.global_log) * k / (k + self.item_shrink) \
            if self.item_shrink > 0 else self.item_log[items]
        tempo = np.zeros(len(customers))
        known = customers < len(self.tempo_raw)
        if known.any():
            m = self.tempo_count[customers[known]]
            tempo[known] = self.tempo_raw[customers[known]] * m / (m + self.tempo_shrink)
        where = np.searchsorted(self.pair_keys, customers * self.n_items + items)
        where = np.minimum(where, max(len(self.pair_keys) - 1, 0))
        found = (len(self.pair_keys) > 0) & (self.pair_keys[where] == customers * self.n_items + items) \
            if len(self.pair_keys) else np.zeros(len(customers), dtype=bool)
        n = np.where(found, self.pair_count[where] if len(self.pair_count) else 0, 0)
        pair = np.where(found, self.pair_log[where] if len(self.pair_log) else 0.0, 0.0)
        prior = base + tempo
        weight = n / (n + self.pair_shrink)
        with np.errstate(invalid="ignore"):
            return np.exp(np.where(np.isfinite(prior), prior + weight * (pair - prior), pair))

    def due(self, items: np.ndarray, last_bought_day: np.ndarray, today: int,
            customers: np.ndarray | None = None) -> np.ndarray:
        """Boolean per (item, last purchase day): is it due for repurchase today? With the
        customers' codes, each customer's own predicted interval is used, else the item's."""
        items = np.asarray(items, dtype=np.int64)
        interval = self.interval[items]
        if customers is not None and len(items):
            personal = self.predict_interval(np.asarray(customers), items)
            interval = np.where(np.isfinite(interval) & np.isfinite(personal), personal, interval)
        elapsed = today - np.asarray(last_bought_day)
        with np.errstate(invalid="ignore"):
            return np.isfinite(interval) & (elapsed >= self.due_fraction * interval) & \
                (elapsed <= self.overdue_factor * np.maximum(interval, 1))


@dataclass(frozen=True)
class TimingError:
    """Mean absolute error in days of predicted next-purchase dates on held-out repeats."""

    method: str
    mae_days: float
    median_ae_days: float
    pairs: int


def evaluate_timing(purchases: Purchases, timing: RepurchaseTiming | None = None) -> list[TimingError]:
    """Hold out the last purchase of every (customer, item) bought on three or more distinct
    days; predict it from the purchase before (so every method has at least one own gap):
    the model, the customer's own median interval for the item, the item's median interval."""
    customer, item, day, gap = repeat_gaps(purchases)
    key = customer * purchases.n_items + item
    last = np.ones(len(key), dtype=bool)
    last[:-1] = key[1:] != key[:-1]  # repeat_gaps is sorted by (customer, item, day)
    _, pair, gaps_of_pair = np.unique(key, return_inverse=True, return_counts=True)
    held = last & (gaps_of_pair[pair.ravel()] >= 2)
    if not held.any():
        return []
    held_triples = set(zip(customer[held].tolist(), item[held].tolist(), day[held].tolist(), strict=True))
    rows = np.array([t not in held_triples for t in zip(purchases.customer.tolist(), purchases.item.tolist(),
                                                        purchases.day.tolist(), strict=True)], dtype=bool)
    train = purchases.subset(rows)
    model = (timing or RepurchaseTiming()).fit(train)
    truth = gap[held].astype(np.float64)
    c, i = customer[held], item[held]
    t_customer, t_item, _, t_gap = repeat_gaps(train)
    t_keys, t_pair = np.unique(t_customer * purchases.n_items + t_item, return_inverse=True)
    pair_median, _ = _group_medians(t_pair.ravel(), t_gap.astype(np.float64), len(t_keys))
    item_median, _ = _group_medians(t_item, t_gap.astype(np.float64), purchases.n_items)
    predictions = {"model": model.predict_interval(c, i),
                   "customer_median": pair_median[np.searchsorted(t_keys, c * purchases.n_items + i)],
                   "item_median": item_median[i]}
    out = []
    for method, predicted in predictions.items():
        error = np.abs(np.nan_to_num(predicted, nan=float(np.nanmedian(truth))) - truth)
        out.append(TimingError(method, float(error.mean()), float(np.median(error)), int(held.sum())))
    return out
