"""Repurchase timing: the typical interval between one customer's purchases of the same item."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recommender.data import Purchases

__all__ = ["RepurchaseTiming"]


@dataclass
class RepurchaseTiming:
    """An item is a consumable when enough of its buyers bought it again; it is due for a
    customer once the typical interval (median gap) has nearly passed since their last purchase."""

    min_repeat_customers: int = 3
    min_repeat_share: float = 0.05
    due_fraction: float = 0.8  # due from 80 % of the typical interval …
    overdue_factor: float = 3.0  # … until 3× it (then the habit is probably gone)
    interval: np.ndarray = field(default_factory=lambda: np.zeros(0))  # days per item; nan = not consumable

    def fit(self, purchases: Purchases) -> RepurchaseTiming:
        pairs = np.unique(np.stack([purchases.customer.astype(np.int64), purchases.item.astype(np.int64),
                                    purchases.day.astype(np.int64)]), axis=1)
        customer, item, day = pairs
        same = (customer[1:] == customer[:-1]) & (item[1:] == item[:-1])
        gaps, gap_items = (day[1:] - day[:-1])[same], item[1:][same]
        self.interval = np.full(purchases.n_items, np.nan)
        buyers = np.bincount(np.unique(np.stack([customer, item]), axis=1)[1], minlength=purchases.n_items)
        repeaters = np.bincount(np.unique(np.stack([customer[1:][same], gap_items]), axis=1)[1],
                                minlength=purchases.n_items) if same.any() else np.zeros(purchases.n_items)
        order = np.argsort(gap_items, kind="stable")
        gaps, gap_items = gaps[order], gap_items[order]
        bounds = np.searchsorted(gap_items, np.arange(purchases.n_items + 1))
        for it in np.flatnonzero((repeaters >= self.min_repeat_customers)
                                 & (repeaters >= self.min_repeat_share * np.maximum(buyers, 1))):
            self.interval[it] = float(np.median(gaps[bounds[it]:bounds[it + 1]]))
        return self

    def is_consumable(self, item: int) -> bool:
        return bool(np.isfinite(self.interval[item]))

    def due(self, items: np.ndarray, last_bought_day: np.ndarray, today: int) -> np.ndarray:
        """Boolean per (item, last purchase day): is it due for repurchase today?"""
        interval = self.interval[items]
        elapsed = today - last_bought_day
        with np.errstate(invalid="ignore"):
            return np.isfinite(interval) & (elapsed >= self.due_fraction * interval) & \
                (elapsed <= self.overdue_factor * np.maximum(interval, 1))
