"""A generated long-tail shop: 10k items in themed clusters with Zipf popularity.

Customers keep to one or two themes (what they like) and sometimes stray to popular items
elsewhere, so items in a theme are bought together — the co-purchase structure neighbourhood
models feed on, and what popularity alone cannot see.

    python -m bench.longtail --customers 20000 --out bench/out/longtail.csv
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from recommender.data import Purchases

THEME_SIZE = 20


def _zipf_weights(n: int, exponent: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** exponent
    return w / w.sum()


def generate(customers: int, items: int = 10_000, seed: int = 1, loyalty: float = 0.75) -> Purchases:
    """Purchase lines over one year; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    themes = items // THEME_SIZE
    theme_pop = rng.permutation(_zipf_weights(themes, 0.9))
    in_theme = _zipf_weights(THEME_SIZE, 1.0)
    liked = np.stack([rng.choice(themes, customers, p=theme_pop), rng.choice(themes, customers, p=theme_pop)], 1)
    orders = np.minimum(rng.geometric(0.3, customers), 25)
    order_customer = np.repeat(np.arange(customers), orders)
    order_day = rng.integers(0, 365, len(order_customer))
    lines = rng.integers(1, 5, len(order_customer))
    customer = np.repeat(order_customer, lines)
    day = np.repeat(order_day, lines)
    stray = rng.random(len(customer)) > loyalty
    theme = liked[customer, rng.integers(0, 2, len(customer))]
    theme[stray] = rng.choice(themes, int(stray.sum()), p=theme_pop)
    item = theme * THEME_SIZE + rng.choice(THEME_SIZE, len(customer), p=in_theme)
    return Purchases.from_keys(customer, item, day + 19_000)


def write_csv(purchases: Purchases, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["customer", "item", "date"])
        for c, i, d in zip(purchases.customer, purchases.item, purchases.day, strict=True):
            out.writerow([purchases.customer_keys[c], f"item{purchases.item_keys[i]}", int(d) * 86400])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("bench/out/longtail.csv"))
    args = parser.parse_args()
    write_csv(generate(args.customers, args.items), args.out)
    print(args.out)
