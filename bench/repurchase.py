"""Repurchase-timing error (MAE in days) on held-out repeat purchases: the model against
"the customer's median interval" and "the item's median interval", on purchase CSVs and on a
generated shop whose intervals are known.

The generated shop: consumables with a base interval each (a week to three months); every
customer re-buys a few of them at base × their own tempo (faster or slower than most) × a
little noise, and buys one-off items beside them.

    python -m bench.repurchase [--csv PATH --customer COL --item COL --time COL [--dayfirst]]...
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from recommender.data import Purchases
from recommender.evaluate import load_csv
from recommender.repurchase import evaluate_timing

BASE_INTERVALS = (7, 14, 21, 30, 45, 60, 90)


def generate(customers: int = 3000, consumables: int = 200, one_offs: int = 300, seed: int = 7,
             tempo_sigma: float = 0.35, noise_sigma: float = 0.2) -> tuple[Purchases, dict[tuple[int, int], float]]:
    """(purchases, the true interval in days of every customer-item habit by their keys)."""
    rng = np.random.default_rng(seed)
    base = rng.choice(BASE_INTERVALS, consumables) * np.exp(rng.normal(0, 0.1, consumables))
    popularity = 1.0 / np.arange(1, consumables + 1)
    popularity /= popularity.sum()
    rows: list[tuple[int, int, int]] = []
    truth: dict[tuple[int, int], float] = {}
    for c in range(customers):
        tempo = float(np.exp(rng.normal(0, tempo_sigma)))
        for item in rng.choice(consumables, rng.integers(1, 5), replace=False, p=popularity):
            interval = float(base[item]) * tempo
            truth[(c, int(item))] = interval
            day = float(rng.uniform(0, 120))
            while day < 365:
                rows.append((c, int(item), int(day)))
                if rng.random() < 0.3:  # a one-off beside it
                    rows.append((c, consumables + int(rng.integers(one_offs)), int(day)))
                day += interval * float(np.exp(rng.normal(0, noise_sigma)))
    customers, items, days = (np.array(v) for v in zip(*rows, strict=True))
    return Purchases.from_keys(customers, items, days + 19_000), truth


def _table(name: str, purchases: Purchases) -> None:
    started = time.perf_counter()
    results = evaluate_timing(purchases)
    seconds = time.perf_counter() - started
    for r in results:
        print(f"| {name} | {r.method} | {r.pairs} | {r.mae_days:.1f} | {r.median_ae_days:.1f} | {seconds:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, action="append", default=[])
    parser.add_argument("--customer", action="append", default=[])
    parser.add_argument("--item", action="append", default=[])
    parser.add_argument("--time", action="append", default=[])
    parser.add_argument("--dayfirst", action="append", default=[], help="yes/no per --csv")
    args = parser.parse_args()
    print("| data | method | held-out repeats | MAE days | median AE days | s |")
    print("|---|---|---:|---:|---:|---:|")
    _table("generated (3,000 customers, known intervals)", generate()[0])
    for n, path in enumerate(args.csv):
        dayfirst = n < len(args.dayfirst) and args.dayfirst[n] == "yes"
        _table(path.name, load_csv(path, args.customer[n], args.item[n], args.time[n], dayfirst))


if __name__ == "__main__":
    main()
