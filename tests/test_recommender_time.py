"""Models that use time: recent purchases and item statistics weigh more, what follows the latest
basket is recommended, neighbours are recent look-alikes; selection stays on validation."""
from __future__ import annotations

import numpy as np
import pytest

from recommender.data import Purchases
from recommender.models import EASE, TIFUKNN, CategoryPopularity, RecentEASE, Sequential
from recommender.selection import CANDIDATES, choose_model, recommend_top_k


def _purchases(rows: list[tuple[object, str, int]]) -> Purchases:
    customers, items, days = zip(*rows, strict=True)
    return Purchases.from_keys(customers, items, days)


def _code(p: Purchases, customer: object) -> int:
    return int(np.flatnonzero(p.customer_keys == customer)[0])


def _top(model, p: Purchases, customer: object, k: int = 1) -> list[str]:  # type: ignore[no-untyped-def]
    best = recommend_top_k(model, p, np.array([_code(p, customer)]), k)[0]
    return [str(p.item_keys[i]) for i in best if i >= 0]


def fashion_changes() -> Purchases:
    """Last year, 'lamp' went with 'old-shade'; this month it goes with 'new-shade'."""
    rows = [(f"old{c}", "lamp", 0) for c in range(10)] + [(f"old{c}", "old-shade", 0) for c in range(10)]
    rows += [(f"new{c}", "lamp", 360) for c in range(6)] + [(f"new{c}", "new-shade", 360) for c in range(6)]
    rows += [("me", "lamp", 364)]
    return _purchases(rows)


def test_recent_item_statistics_outweigh_old_ones() -> None:
    p = fashion_changes()
    assert _top(EASE(l2=1.0).fit(p, today=365), p, "me") == ["old-shade"]  # plain counts: 10 against 6
    assert _top(RecentEASE(l2=1.0, gram_half_life=30).fit(p, today=365), p, "me") == ["new-shade"]


def test_a_customers_recent_purchases_say_more_than_old_ones() -> None:
    """'me' bought a mug long ago and a teapot last week: the teapot's companion comes first."""
    rows = [(f"m{c}", "mug", 300) for c in range(5)] + [(f"m{c}", "coaster", 300) for c in range(5)]
    rows += [(f"t{c}", "teapot", 300) for c in range(5)] + [(f"t{c}", "tea", 300) for c in range(5)]
    rows += [("me", "mug", 0), ("me", "teapot", 358)]
    p = _purchases(rows)
    model = RecentEASE(l2=1.0, gram_half_life=1e6, input_half_life=30).fit(p, today=365)
    assert _top(model, p, "me") == ["tea"]


def test_sequential_recommends_what_follows_the_latest_basket() -> None:
    """'a' is bought with 'b' and with 'c' alike (with 'b' a little more lately), but 'c' is
    what comes after 'a'; 'b' came before it."""
    rows = []
    for c in range(10):
        rows += [(f"x{c}", "a", 1), (f"x{c}", "c", 2), (f"y{c}", "b", 4), (f"y{c}", "a", 5)]
    rows += [("me", "a", 6)]
    p = _purchases(rows)
    assert _top(RecentEASE(l2=1.0, gram_half_life=30).fit(p, today=7), p, "me") == ["b"]
    assert _top(Sequential(l2=1.0, gram_half_life=30, gamma=1.0).fit(p, today=7), p, "me") == ["c"]


def test_tifu_knn_recommends_what_recent_look_alikes_bought_but_not_the_customer_themself() -> None:
    rows = [(f"g{c}", item, 10) for c in range(6) for item in ("a", "b", "c")]
    rows += [(f"h{c}", item, 10) for c in range(8) for item in ("x", "y", "z")]
    rows += [("me", "a", 9), ("me", "b", 9)]
    p = _purchases(rows)
    model = TIFUKNN(half_life_days=30, neighbours=3, alpha=1.0).fit(p, today=10)
    assert _top(model, p, "me") == ["c"]  # 'x', 'y', 'z' are bought more, by customers unlike 'me'
    scores = model.scores(p.matrix()[[_code(p, "me")]], np.array([_code(p, "me")]))
    assert scores.shape == (1, p.n_items) and np.isfinite(scores).all()


@pytest.mark.parametrize("model", [RecentEASE(l2=1.0), TIFUKNN(neighbours=2), Sequential(l2=1.0)])
def test_time_models_score_customers_they_were_not_fitted_on(model) -> None:  # type: ignore[no-untyped-def]
    """Serving scores by binary history when no customer codes come with it."""
    p = fashion_changes()
    model.fit(p, today=365)
    history = p.matrix()[[_code(p, "me")]]
    assert model.scores(history).shape == (1, p.n_items)
    assert len(model.similar_items(0, 2)) <= 2


def test_cold_start_ranks_the_customers_categories_first() -> None:
    p = _purchases([("a", "tea1", 1), ("b", "tea1", 1), ("c", "cup", 1), ("d", "cup", 1), ("e", "cup", 1),
                    ("me", "tea2", 2)])
    categories = np.array([{"tea1": "tea", "tea2": "tea", "cup": "ware"}[str(k)] for k in p.item_keys], dtype=object)
    model = CategoryPopularity(categories=categories).fit(p, today=3)
    assert _top(model, p, "me", k=2) == ["tea1", "cup"]  # the cup sells more, but 'me' buys tea


def test_every_family_has_a_small_grid_and_the_time_families_are_candidates() -> None:
    assert {"recent_ease", "tifu_knn", "sequential"} <= set(CANDIDATES)
    assert sum(len(grid) for grid in CANDIDATES.values()) <= 24  # selection overfits past a modest grid
    assert len(CANDIDATES["ease"]) >= 5  # the λ grid


def test_selection_serves_a_time_model_when_fashions_change() -> None:
    """Items come and go: what goes with a lamp changes over the year, and a customer who
    bought a lamp recently gets this season's companion."""
    rng = np.random.default_rng(3)
    rows: list[tuple[object, str, int]] = []
    for c in range(240):
        for _visit in range(3):
            day = int(rng.integers(0, 360))
            season = day // 90  # four seasons, each with its own companions of every base item
            base = int(rng.integers(0, 6))
            rows += [(c, f"base{base}", day), (c, f"s{season}-{base}-{int(rng.integers(0, 2))}", day)]
    p = _purchases(rows)
    choice = choose_model(p)
    assert choice.family in ("recent_ease", "sequential", "tifu_knn")
    assert {s.family for s in choice.scored} == set(CANDIDATES)
    assert choice.validation_recall == max(s.mean for s in choice.scored if s.family == choice.family)
