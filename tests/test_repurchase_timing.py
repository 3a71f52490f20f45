"""Repurchase timing, measured: predicted next-purchase dates beat the customer's and the item's
median interval on held-out repeats, and "due for repurchase" reaches the presets."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select

from bench.repurchase import generate
from plugin.storage.models import Message, Order, Shop
from recommender.data import Purchases
from recommender.repurchase import RepurchaseTiming, evaluate_timing
from recommender.serving import due_many, train_shop
from scenarios.post_purchase import PostPurchase
from scenarios.recommendation import Recommendation
from tests.factories import make_customer, make_order, make_product, make_shop


def _errors(purchases: Purchases) -> dict[str, float]:
    return {r.method: r.mae_days for r in evaluate_timing(purchases)}


def test_predicted_dates_beat_both_median_baselines_on_a_shop_with_known_intervals() -> None:
    purchases, _ = generate(customers=800, seed=11)
    errors = _errors(purchases)
    assert errors["model"] < errors["customer_median"] and errors["model"] < errors["item_median"]


def test_a_fast_customer_is_predicted_to_come_back_sooner_than_a_slow_one() -> None:
    purchases, truth = generate(customers=600, seed=5)
    timing = RepurchaseTiming().fit(purchases)
    keys = list(truth)
    customers = np.array([int(np.flatnonzero(purchases.customer_keys == c)[0]) for c, _ in keys])
    items = np.array([int(np.flatnonzero(purchases.item_keys == i)[0]) for _, i in keys])
    predicted = timing.predict_interval(customers, items)
    known = np.isfinite(predicted)
    actual = np.array([truth[k] for k in keys])
    assert known.mean() > 0.5
    assert np.corrcoef(np.log(predicted[known]), np.log(actual[known]))[0, 1] > 0.8


def test_when_intervals_are_noise_the_prediction_falls_back_to_the_item() -> None:
    """Random gaps: the customer's own median is noise, and the model learns to trust the item's."""
    rng = np.random.default_rng(2)
    rows = [(c, f"i{item}", int(d)) for c in range(400) for item in range(3)
            for d in np.sort(rng.choice(700, 4, replace=False))]
    customers, items, days = zip(*rows, strict=True)
    errors = _errors(Purchases.from_keys(customers, items, days))
    assert errors["model"] < errors["customer_median"]
    assert errors["model"] <= errors["item_median"] * 1.03


def test_due_follows_the_customers_own_interval() -> None:
    """Most buy coffee monthly; 'quick' buys it every ten days: nine days on, only 'quick' is due."""
    rows = [(c, "coffee", d) for c in range(8) for d in (0, 30, 60, 90)]
    rows += [("quick", "coffee", d) for d in (0, 10, 20, 30, 40, 50, 60, 70, 80, 90)]
    customers, items, days = zip(*[(str(c), i, d) for c, i, d in rows], strict=True)
    p = Purchases.from_keys(customers, items, days)
    timing = RepurchaseTiming().fit(p)
    quick, usual = (int(np.flatnonzero(p.customer_keys == k)[0]) for k in ("quick", "0"))
    coffee = np.array([0, 0])
    due = timing.due(coffee, np.array([90, 90]), today=99, customers=np.array([quick, usual]))
    assert due.tolist() == [True, False]


@pytest.fixture
def coffee_shop(session, clock):  # type: ignore[no-untyped-def]
    now = clock.now()
    shop = make_shop(session, now)
    coffee = make_product(session, shop, now, name="コーヒー豆", category="コーヒー")
    mug = make_product(session, shop, now, name="マグ", category="器")
    regulars = []
    for _ in range(5):
        regular = make_customer(session, shop, now)
        for days_ago in (95, 65, 35):
            make_order(session, shop, regular, now - timedelta(days=days_ago), [coffee])
        regulars.append(regular)
    newcomer = make_customer(session, shop, now)
    make_order(session, shop, newcomer, now - timedelta(days=2), [mug])
    train_shop(session, shop.id, now)
    session.refresh(shop)
    return shop, coffee, regulars, newcomer


def test_due_consumables_are_listed_per_customer(session, coffee_shop) -> None:  # type: ignore[no-untyped-def]
    shop, coffee, regulars, newcomer = coffee_shop
    due = due_many(session, shop, [regulars[0].id, newcomer.id], 4)
    assert [p.id for p in due[regulars[0].id]] == [coffee.id] and newcomer.id not in due
    coffee.stock = 0
    session.add(coffee)
    session.commit()
    assert due_many(session, shop, [regulars[0].id], 4) == {}  # sold out: not promoted


def test_recommendation_and_post_purchase_mails_carry_the_due_items(session, coffee_shop) -> None:  # type: ignore[no-untyped-def]
    shop, coffee, regulars, _ = coffee_shop
    regular = regulars[0]
    reco = Message(id=1, shop_id=shop.id, customer_id=regular.id, scenario_key="recommendation")
    assert [i["id"] for i in Recommendation().contexts(session, shop, [reco])[1]["due_items"]] == [coffee.id]
    first_order = session.execute(select(Order.id).where(Order.customer_id == regular.id)
                                  .order_by(Order.ordered_at)).scalars().first()
    follow_up = Message(id=2, shop_id=shop.id, customer_id=regular.id, scenario_key="post_purchase",
                        trigger_ref=first_order, trigger_step="d90")
    thanks = Message(id=3, shop_id=shop.id, customer_id=regular.id, scenario_key="post_purchase",
                     trigger_ref=first_order, trigger_step="thanks")
    contexts = PostPurchase().contexts(session, session.get(Shop, shop.id), [follow_up, thanks])
    assert [i["id"] for i in contexts[2]["due_items"]] == [coffee.id]
    assert contexts[3]["due_items"] == []  # a thank-you is no time to sell the same again
