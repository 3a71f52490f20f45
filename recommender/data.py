"""Purchase histories as arrays and sparse customer × item matrices."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["Purchases"]


@dataclass(frozen=True)
class Purchases:
    """One row per purchase line: integer customer and item codes and a day number."""

    customer: np.ndarray  # int32 codes into customer_keys
    item: np.ndarray  # int32 codes into item_keys
    day: np.ndarray  # int32 days since 1970-01-01
    customer_keys: np.ndarray
    item_keys: np.ndarray

    @classmethod
    def from_keys(cls, customers: Sequence[object] | np.ndarray, items: Sequence[object] | np.ndarray,
                  days: Sequence[int] | np.ndarray) -> Purchases:
        """Encode arbitrary customer and item keys."""
        customer_keys, customer = np.unique(np.asarray(customers), return_inverse=True)
        item_keys, item = np.unique(np.asarray(items), return_inverse=True)
        return cls(customer.astype(np.int32), item.astype(np.int32), np.asarray(days, dtype=np.int32),
                   customer_keys, item_keys)

    @property
    def n_customers(self) -> int:
        return len(self.customer_keys)

    @property
    def n_items(self) -> int:
        return len(self.item_keys)

    def subset(self, mask: np.ndarray) -> Purchases:
        """The same key spaces, fewer rows."""
        return Purchases(self.customer[mask], self.item[mask], self.day[mask], self.customer_keys, self.item_keys)

    def matrix(self, weights: np.ndarray | None = None) -> sp.csr_matrix:
        """Customer × item; binary unless weights are given (then summed)."""
        data = np.ones(len(self.item), dtype=np.float32) if weights is None else weights.astype(np.float32)
        m = sp.csr_matrix((data, (self.customer, self.item)), shape=(self.n_customers, self.n_items))
        m.sum_duplicates()
        if weights is None:
            m.data[:] = 1.0
        return m

    def recency_matrix(self, today: int, half_life_days: float) -> sp.csr_matrix:
        """Customer × item: 0.5^(age/half-life) of the customer's latest purchase of the item
        (1 for a purchase today), so a recent purchase says more than an old one."""
        age = np.maximum(today - self.day.astype(np.int64), 0).astype(np.float64)
        weight = np.power(0.5, age / half_life_days)
        shape = (self.n_customers, self.n_items)
        order = np.lexsort((-weight, self.item, self.customer))  # per cell, the latest purchase first
        customer, item, weight = self.customer[order], self.item[order], weight[order]
        first = np.ones(len(customer), dtype=bool)
        first[1:] = (customer[1:] != customer[:-1]) | (item[1:] != item[:-1])
        return sp.csr_matrix((weight[first].astype(np.float32), (customer[first], item[first])), shape=shape)

    def baskets(self) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
        """(basket × item binary matrix, customer of each basket, day of each basket); a basket
        is one customer's purchases of one day, in (customer, day) order."""
        order = np.lexsort((self.day, self.customer))
        customer, day, item = self.customer[order], self.day[order], self.item[order]
        new = np.ones(len(customer), dtype=bool)
        new[1:] = (customer[1:] != customer[:-1]) | (day[1:] != day[:-1])
        basket = np.cumsum(new) - 1
        m = sp.csr_matrix((np.ones(len(item), dtype=np.float32), (basket, item)),
                          shape=(int(new.sum()), self.n_items))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m, customer[new], day[new]
