"""Models, protocol, timing and rankings on tiny data where the right answer is known."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.data import Purchases
from recommender.evaluate import EvaluationError, evaluate, load_csv, parse_day
from recommender.models import EASE, Blend, ItemKNN, Popularity
from recommender.protocol import leave_last_date_out, top_k
from recommender.rankings import bestsellers, top_category
from recommender.repurchase import RepurchaseTiming
from recommender.selection import choose_model, recommend_top_k


def two_groups() -> Purchases:
    """Customers 0-5 buy among items a,b,c; customers 6-11 among x,y,z; 'x' is the bestseller."""
    rows = []
    for c in range(6):
        rows += [(c, "a", 1), (c, "b", 2)] + ([(c, "c", 3)] if c < 5 else [])
    for c in range(6, 12):
        rows += [(c, "x", 1), (c, "y", 2)] + ([(c, "z", 3)] if c < 11 else [])
    rows += [(12, "x", 1), (13, "x", 1), (14, "x", 1)]
    customers, items, days = zip(*rows, strict=True)
    return Purchases.from_keys(customers, items, days)


def _items(p: Purchases, codes: np.ndarray) -> list[str]:
    return [str(p.item_keys[i]) for i in codes if i >= 0]


@pytest.mark.parametrize("model", [ItemKNN(shrink=0), EASE(l2=1.0), Blend(alpha=0.9)])
def test_neighbourhood_models_recommend_within_the_customers_group(model) -> None:  # type: ignore[no-untyped-def]
    p = two_groups()
    model.fit(p, today=4)
    customer_5 = int(np.flatnonzero(p.customer_keys == 5)[0])  # bought a, b but not c
    best = recommend_top_k(model, p, np.array([customer_5]), k=1)[0]
    assert _items(p, best) == ["c"]


def test_popularity_recommends_the_bestseller_to_everyone() -> None:
    p = two_groups()
    model = Popularity(half_life_days=1e9).fit(p, today=4)
    customer_5 = int(np.flatnonzero(p.customer_keys == 5)[0])
    assert _items(p, recommend_top_k(model, p, np.array([customer_5]), k=1)[0]) == ["x"]


def test_recent_purchases_weigh_more_in_popularity() -> None:
    p = Purchases.from_keys([1, 2, 3], ["old", "old", "new"], [0, 0, 100])
    weights = Popularity(half_life_days=10).fit(p, today=100).weights
    assert weights[list(p.item_keys).index("new")] > weights[list(p.item_keys).index("old")]


def test_items_a_customer_owns_are_never_recommended() -> None:
    p = two_groups()
    model = Popularity().fit(p, today=4)
    recommended = recommend_top_k(model, p, np.arange(p.n_customers), k=6)
    history = p.matrix()
    for customer, items in enumerate(recommended):
        owned = set(history.indices[history.indptr[customer]:history.indptr[customer + 1]])
        assert not owned & {i for i in items if i >= 0}


def test_top_k_breaks_ties_by_item_order_and_marks_exhausted_rows() -> None:
    scores = np.array([[1.0, 2.0, 2.0, 0.5]])


    exclude = sp.csr_matrix(([1.0], ([0], [3])), shape=(1, 4))
    assert top_k(scores, exclude, 4).tolist() == [[1, 2, 0, -1]]


def test_protocol_tests_new_items_of_the_last_date_only() -> None:
    p = Purchases.from_keys([1, 1, 1, 1, 2], ["a", "b", "a", "c", "a"], [1, 1, 5, 5, 3])
    split = leave_last_date_out(p)
    customer_1 = int(np.flatnonzero(p.customer_keys == 1)[0])
    assert split.customers.tolist() == [customer_1]  # customer 2 bought on one date only
    assert _items(p, split.test[customer_1].indices) == ["c"]  # 'a' was bought before: a repurchase
    assert _items(p, split.rebought[customer_1].indices) == ["a"]
    assert len(split.train.item) == 3  # the last date is held out


def test_repurchase_timing_flags_a_consumable_when_its_interval_has_passed() -> None:
    rows = [(c, "coffee", d) for c in range(5) for d in (0, 30, 60)] + [(c, "mug", 0) for c in range(5)]
    customers, items, days = zip(*rows, strict=True)
    p = Purchases.from_keys(customers, items, days)
    timing = RepurchaseTiming().fit(p)
    coffee, mug = list(p.item_keys).index("coffee"), list(p.item_keys).index("mug")
    assert timing.interval[coffee] == 30 and not timing.is_consumable(mug)
    due = timing.due(np.array([coffee, coffee, mug]), np.array([60, 80, 0]), today=88)
    assert due.tolist() == [True, False, False]


def test_bestsellers_rank_units_in_the_window_with_stable_ties() -> None:
    items = np.array([0, 1, 2, 1, 3])
    ranked = bestsellers(items, np.array([1, 1, 2, 1, 5.0]), np.array([10, 10, 10, 9, 1]), today=10, window=7,
                         n_items=4, n=10)
    assert ranked == [1, 2, 0]  # item 3 sold outside the window; 1 and 2 tie on 2 units → lower code first
    assert bestsellers(items, np.ones(5), np.full(5, 10), 10, 7, 4, 10, allowed=np.array([0, 0, 1, 1], bool)) == [2, 3]


def test_top_category_is_the_one_bought_most() -> None:
    assert top_category([0, 1, 1, 2], ["tea", "coffee", "coffee"]) == "coffee"
    assert top_category([], ["tea"]) is None


def test_selection_keeps_popularity_when_nothing_beats_it_clearly() -> None:
    p = Purchases.from_keys(np.repeat(np.arange(60), 2), np.tile(["a", "b"], 60), np.tile([1, 2], 60))
    assert choose_model(p).family == "popularity"


def test_harness_reads_day_first_dates_and_reports_every_model(tmp_path: Path) -> None:
    csv = tmp_path / "lines.csv"
    visits = ((1, "a"), (2, "b"), (3, "c"))
    rows = ["member,date,item"] + [f"{c},0{d}-01-2015,{i}" for c in range(40) for d, i in visits]
    csv.write_text("\n".join(rows))
    results, timing, chosen = evaluate(load_csv(csv, "member", "item", "date", dayfirst=True), k=2)
    assert [r.model for r in results] == ["popularity", "item_knn", "ease", "blend", "recent_ease", "tifu_knn",
                                          "sequential", "auto"]
    assert results[0].recall == 1.0 and chosen == "popularity" and timing.rebought == 0


def test_harness_names_the_row_it_cannot_read(tmp_path: Path) -> None:
    csv = tmp_path / "lines.csv"
    csv.write_text("member,date,item\n1,2015-01-01,a\n2,yesterday,b\n")
    with pytest.raises(EvaluationError, match=r"lines.csv:3: cannot read date 'yesterday'"):
        load_csv(csv, "member", "item", "date")
    with pytest.raises(EvaluationError, match="no column 'customer'"):
        load_csv(csv, "customer", "item", "date")


def test_dates_in_several_forms() -> None:
    assert parse_day("2015-01-02") == parse_day("02-01-2015", dayfirst=True) == parse_day("01/02/2015")
    assert parse_day("1420156800") == parse_day("2015-01-02 10:00:00")
