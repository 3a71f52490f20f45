"""The evaluation harness behind `okaeri recommender evaluate`."""
from __future__ import annotations

import csv
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np

from recommender.data import Purchases
from recommender.models import Model
from recommender.protocol import Split, evaluate_scores, leave_last_date_out
from recommender.repurchase import RepurchaseTiming
from recommender.selection import CANDIDATES, choose_model, recommend_top_k

__all__ = ["EvaluationError", "ModelResult", "TimingResult", "load_csv", "evaluate", "parse_day"]

EPOCH = date(1970, 1, 1)


class EvaluationError(ValueError):
    """Input the harness cannot read; the message says which row and why."""


@dataclass(frozen=True)
class ModelResult:
    model: str
    recall: float
    ndcg: float
    coverage: float
    train_seconds: float
    validation_recall: float = 0.0  # the family's best grid point on the validation split
    params: str = ""  # that grid point


@dataclass(frozen=True)
class TimingResult:
    rebought: int  # items re-bought on the held-out date
    flagged: int  # items the timing model flagged as due, in all
    hits: int  # re-bought items that were flagged

    @property
    def share_flagged(self) -> float:
        return self.hits / self.rebought if self.rebought else 0.0

    @property
    def precision(self) -> float:
        return self.hits / self.flagged if self.flagged else 0.0


def parse_day(value: str, dayfirst: bool = False) -> int:
    """Days since 1970 from ISO dates, D-M-Y / M-D-Y dates (with - / .), datetimes or unix seconds."""
    text = value.strip()
    if re.fullmatch(r"\d{9,11}(\.\d+)?", text):
        return int(float(text) // 86400)
    parts = re.split(r"[-/.]", text.split("T")[0].split(" ")[0])
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"cannot read date {value!r}")
    a, b, c = (int(p) for p in parts)
    y, m, d = (a, b, c) if len(parts[0]) == 4 else ((c, b, a) if dayfirst else (c, a, b))
    return (date(y, m, d) - EPOCH).days


def load_csv(path: Path, customer: str, item: str, when: str, dayfirst: bool = False) -> Purchases:
    """Read purchase lines; any unreadable row stops with its line number."""
    customers, items, days = [], [], []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in (customer, item, when) if c not in (reader.fieldnames or [])]
        if missing:
            raise EvaluationError(f"{path}: no column {', '.join(map(repr, missing))} (columns: {reader.fieldnames})")
        for line, row in enumerate(reader, start=2):
            try:
                days.append(parse_day(row[when], dayfirst))
            except ValueError as exc:
                raise EvaluationError(f"{path}:{line}: {exc}") from None
            customers.append(row[customer])
            items.append(row[item])
    if not days:
        raise EvaluationError(f"{path}: no purchase lines")
    return Purchases.from_keys(customers, items, days)


def _params(factory: Callable[[], Model]) -> str:
    keywords = getattr(factory, "keywords", {}) or {}
    return ",".join(f"{key}={value:g}" if isinstance(value, float | int) else f"{key}={value}"
                    for key, value in keywords.items())


def _score(name: str, model_factory: Callable[[], Model], split: Split, k: int) -> ModelResult:
    started = time.perf_counter()
    model = model_factory().fit(split.train, int(split.train.day.max()))
    seconds = time.perf_counter() - started
    recommended = recommend_top_k(model, split.train, split.customers, k)
    recall, ndcg = evaluate_scores(recommended, split.test[split.customers], k)
    coverage = len(np.unique(recommended[recommended >= 0])) / split.train.n_items
    return ModelResult(name, recall, ndcg, coverage, seconds)


def _timing(split: Split) -> TimingResult:
    timing = RepurchaseTiming().fit(split.train)
    train = split.train
    last: dict[tuple[int, int], int] = {}
    for c, i, d in zip(train.customer, train.item, train.day, strict=True):
        if (c, i) not in last or d > last[(c, i)]:
            last[(c, i)] = d
    keys = np.array(list(last.keys()), dtype=np.int64).reshape(-1, 2)
    eval_day = split.last_day[keys[:, 0]]
    mask = eval_day >= 0
    keys, eval_day = keys[mask], eval_day[mask]
    last_days = np.array([last[(c, i)] for c, i in keys], dtype=np.int64)
    flagged = np.zeros(len(keys), dtype=bool)
    for day in np.unique(eval_day):
        rows = eval_day == day
        flagged[rows] = timing.due(keys[rows, 1], last_days[rows], int(day))
    rebought = split.rebought
    if not flagged.any():
        return TimingResult(rebought=int(rebought.nnz), flagged=0, hits=0)
    hit = np.asarray(rebought[keys[flagged, 0], keys[flagged, 1]]).ravel() > 0
    return TimingResult(rebought=int(rebought.nnz), flagged=int(flagged.sum()), hits=int(hit.sum()))


def evaluate(purchases: Purchases, k: int = 10) -> tuple[list[ModelResult], TimingResult, str]:
    """Every family (grid point chosen on validation) plus `auto`, the per-shop choice."""
    split = leave_last_date_out(purchases)
    if len(split.customers) == 0:
        raise EvaluationError("no customer bought on two distinct dates with something new the second time")
    started = time.perf_counter()
    auto = choose_model(split.train, k)  # one validation pass scores every grid point of every family
    selection_seconds = time.perf_counter() - started
    results = []
    for name in CANDIDATES:  # train_seconds: the final fit; tuning time is in the auto row
        best = auto.best_of(name)
        assert best is not None
        result = _score(name, best.factory, split, k)
        results.append(ModelResult(name, result.recall, result.ndcg, result.coverage, result.train_seconds,
                                   best.mean, _params(best.factory)))
    chosen = _score("auto", auto.factory, split, k)
    results.append(ModelResult("auto", chosen.recall, chosen.ndcg, chosen.coverage,
                               selection_seconds + chosen.train_seconds, auto.validation_recall,
                               f"{auto.family}:{_params(auto.factory)}"))
    return results, _timing(split), auto.family


def as_dicts(results: list[ModelResult]) -> list[dict[str, object]]:
    return [asdict(r) for r in results]

