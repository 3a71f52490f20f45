"""Bestseller rankings: last 7 and 30 days, overall and per category, ties broken stably."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["bestsellers", "WINDOWS"]

WINDOWS = (7, 30)


def bestsellers(items: np.ndarray, quantities: np.ndarray, days: np.ndarray, today: int, window: int,
                n_items: int, n: int, allowed: np.ndarray | None = None) -> list[int]:
    """Item codes by units sold in (today − window, today], most first; ties go to the lower code.

    `allowed` (boolean per item code) restricts the ranking, e.g. to one category.
    """
    recent = (days > today - window) & (days <= today)
    units = np.bincount(items[recent], weights=quantities[recent], minlength=n_items)
    if allowed is not None:
        units = np.where(allowed, units, 0)
    order = np.lexsort((np.arange(n_items), -units))  # stable: equal units → lower item code first
    return [int(i) for i in order[:n] if units[i] > 0]


def top_category(customer_items: Sequence[int], category_of: Sequence[str]) -> str | None:
    """The category a customer bought most often (ties: alphabetical), or None."""
    counts: dict[str, int] = {}
    for item in customer_items:
        if category_of[item]:
            counts[category_of[item]] = counts.get(category_of[item], 0) + 1
    if not counts:
        return None
    return min(counts, key=lambda c: (-counts[c], c))
