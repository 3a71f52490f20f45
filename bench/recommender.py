"""Recommender cost at 10k and 100k customers of a generated long-tail shop (10k items).

Per candidate family (its first grid point), each in its own process so peak memory (max RSS)
is that candidate's alone: the fit, top-10 for every customer (scored in batches of 2,000: no
dense customer × item matrix), "bought together" lists for every item, and peak memory. Then,
with --selection, the whole per-shop choice (validation over every grid point) and the served
model. EASE-type models keep their item × item matrix to the `max_items` (4,000) most bought
items: 4,000² float32 = 64 MB instead of 400 MB for 10,000; the tail falls back to popularity.

    python -m bench.recommender [--sizes 10000,100000] [--families ease,recent_ease] [--selection]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from bench.host import header
from bench.longtail import generate
from recommender.selection import CANDIDATES, choose_model, recommend_top_k


def candidate(customers: int, family: str) -> dict[str, float | str]:
    purchases = generate(customers)
    today = int(purchases.day.max())
    started = time.perf_counter()
    model = CANDIDATES[family][0]().fit(purchases, today)
    fit = time.perf_counter() - started
    started = time.perf_counter()
    recommend_top_k(model, purchases, np.arange(purchases.n_customers), 10)
    serve = time.perf_counter() - started
    started = time.perf_counter()
    for item in range(purchases.n_items):
        model.similar_items(item, 20)
    similar = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"customers": customers, "items": purchases.n_items, "lines": len(purchases.item), "family": family,
            "fit_s": fit, "top10_all_s": serve, "similar_all_s": similar, "peak_mb": peak_mb}


def one(customers: int) -> dict[str, float | str]:
    purchases = generate(customers)
    today = int(purchases.day.max())
    started = time.perf_counter()
    choice = choose_model(purchases)
    selection = time.perf_counter() - started
    started = time.perf_counter()
    model = choice.factory().fit(purchases, today)
    fit = time.perf_counter() - started
    started = time.perf_counter()
    recommend_top_k(model, purchases, np.arange(purchases.n_customers), 10)
    serve = time.perf_counter() - started
    started = time.perf_counter()
    for item in range(purchases.n_items):
        model.similar_items(item, 20)
    similar = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"customers": customers, "items": purchases.n_items, "lines": len(purchases.item), "model": choice.family,
            "selection_s": selection, "fit_s": fit, "top10_all_s": serve, "similar_all_s": similar,
            "peak_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--families", default=",".join(CANDIDATES))
    parser.add_argument("--selection", action="store_true", help="also time the whole per-shop choice")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--candidate", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one and args.candidate:
        print(json.dumps(candidate(args.one, args.candidate)))
        return
    if args.one:
        print(json.dumps(one(args.one)))
        return
    print(f"# {header()}")
    print("| customers | items | purchase lines | candidate | fit s | top-10 all customers s "
          "| bought-together all items s | peak MB | load (1 min) |")
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for size in args.sizes.split(","):
        for family in args.families.split(","):
            out = subprocess.run([sys.executable, "-m", "bench.recommender", "--one", size, "--candidate", family],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout)
            print(f"| {r['customers']} | {r['items']} | {r['lines']} | {family} | {r['fit_s']:.1f} | "
                  f"{r['top10_all_s']:.1f} | {r['similar_all_s']:.1f} | {r['peak_mb']:.0f} | "
                  f"{os.getloadavg()[0]:.1f} |", flush=True)
    if not args.selection:
        return
    print("| customers | items | purchase lines | served model | selection s | fit s | top-10 all customers s "
          "| bought-together all items s | peak MB |")
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for size in args.sizes.split(","):
        out = subprocess.run([sys.executable, "-m", "bench.recommender", "--one", size], capture_output=True,
                             text=True, check=True)
        r = json.loads(out.stdout)
        print(f"| {r['customers']} | {r['items']} | {r['lines']} | {r['model']} | {r['selection_s']:.1f} | "
              f"{r['fit_s']:.2f} | {r['top10_all_s']:.1f} | {r['similar_all_s']:.1f} | {r['peak_mb']:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
