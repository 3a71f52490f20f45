"""Serving as scenarios see it: top_n respects stock, ownership and cold starts; swaps are atomic."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

import recommender.serving as serving
from plugin.storage.models import Recommendation, Shop
from recommender.serving import ranking, top_n, train_shop
from tests.factories import make_customer, make_order, make_product, make_shop


@pytest.fixture
def shop_with_history(session, clock):  # type: ignore[no-untyped-def]
    """Tea buyers also buy the teapot; everybody buys the bestseller bag; coffee is a consumable."""
    now = clock.now()
    shop = make_shop(session, now)
    tea = make_product(session, shop, now, name="煎茶", category="お茶")
    pot = make_product(session, shop, now, name="急須", category="器")
    bag = make_product(session, shop, now, name="エコバッグ", category="雑貨")
    coffee = make_product(session, shop, now, name="コーヒー豆", category="コーヒー")
    for i in range(12):
        buyer = make_customer(session, shop, now)
        make_order(session, shop, buyer, now - timedelta(days=20 + i), [bag])
        make_order(session, shop, buyer, now - timedelta(days=10), [tea, pot] if i < 10 else [tea])
    regular = make_customer(session, shop, now)
    for days_ago in (95, 65, 35):
        make_order(session, shop, regular, now - timedelta(days=days_ago), [coffee])
    return shop, {"tea": tea, "pot": pot, "bag": bag, "coffee": coffee}, regular


def _names(products) -> list[str]:  # type: ignore[no-untyped-def]
    return [p.name for p in products]


def test_customer_gets_what_similar_customers_bought_and_not_what_they_own(session, clock, shop_with_history) -> None:  # type: ignore[no-untyped-def]
    shop, items, _ = shop_with_history
    tea_only = make_customer(session, shop, clock.now())
    make_order(session, shop, tea_only, clock.now() - timedelta(days=3), [items["tea"]])
    train_shop(session, shop.id, clock.now())
    session.refresh(shop)
    picks = _names(top_n(session, shop, tea_only.id, 2))
    assert "急須" in picks and "煎茶" not in picks


def test_new_customer_gets_the_bestsellers(session, clock, shop_with_history) -> None:  # type: ignore[no-untyped-def]
    shop, _, _ = shop_with_history
    train_shop(session, shop.id, clock.now())
    session.refresh(shop)
    newcomer = make_customer(session, shop, clock.now())
    assert _names(top_n(session, shop, newcomer.id, 2)) == ["煎茶", "急須"]  # 30-day units, most first


def test_sold_out_and_excluded_items_are_never_served(session, clock, shop_with_history) -> None:  # type: ignore[no-untyped-def]
    shop, items, _ = shop_with_history
    train_shop(session, shop.id, clock.now())
    session.refresh(shop)
    items["tea"].stock = 0
    session.add(items["tea"])
    session.commit()
    newcomer = make_customer(session, shop, clock.now())
    picks = _names(top_n(session, shop, newcomer.id, 5, exclude=[items["pot"].id]))
    assert "煎茶" not in picks and "急須" not in picks
    assert "煎茶" in _names(top_n(session, shop, newcomer.id, 5, in_stock_only=False))


def test_consumable_due_for_repurchase_comes_back_first(session, clock, shop_with_history) -> None:  # type: ignore[no-untyped-def]
    shop, _, regular = shop_with_history
    for _ in range(3):  # more coffee regulars so coffee counts as a consumable
        other = make_customer(session, shop, clock.now())
        for days_ago in (90, 60):
            make_order(session, shop, other, clock.now() - timedelta(days=days_ago),
                       [session.execute(select(serving.Product).where(serving.Product.name == "コーヒー豆")).scalar()])
    train_shop(session, shop.id, clock.now())
    session.refresh(shop)
    assert _names(top_n(session, shop, regular.id, 1)) == ["コーヒー豆"]  # last bought 35 days ago, every 30


def test_rankings_are_stored_overall_and_per_category(session, clock, shop_with_history) -> None:  # type: ignore[no-untyped-def]
    shop, items, _ = shop_with_history
    train_shop(session, shop.id, clock.now())
    session.refresh(shop)
    assert ranking(session, shop, "7d") == []  # nothing sold in the last week
    assert ranking(session, shop, "30d")[:2] == [items["tea"].id, items["pot"].id]
    assert ranking(session, shop, "30d:雑貨") == [items["bag"].id]


def test_retraining_swaps_sets_and_a_failed_training_keeps_the_old_one(session, clock, shop_with_history,  # type: ignore[no-untyped-def]
                                                                      monkeypatch) -> None:
    shop, _, _ = shop_with_history
    first = train_shop(session, shop.id, clock.now())
    second = train_shop(session, shop.id, clock.now())
    assert session.execute(select(Shop.recommendation_set_id).where(Shop.id == shop.id)).scalar() == second.id
    assert session.execute(select(func.count()).where(Recommendation.set_id == first.id)).scalar() == 0

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("training crashed half-way")

    monkeypatch.setattr(serving, "_ranking_rows", broken)
    with pytest.raises(RuntimeError):
        train_shop(session, shop.id, clock.now())
    session.rollback()
    assert session.execute(select(Shop.recommendation_set_id).where(Shop.id == shop.id)).scalar() == second.id
    assert session.execute(select(func.count()).where(Recommendation.set_id == second.id)).scalar() > 0


def test_a_young_shop_gets_bestsellers_of_the_customers_categories(session, clock, shop_with_history) -> None:  # type: ignore[no-untyped-def]
    shop, items, _ = shop_with_history  # some 30 orders: far from enough to learn from
    now = clock.now()
    sencha2 = make_product(session, shop, now, name="玉露", category="お茶")
    for i in range(3):
        make_order(session, shop, make_customer(session, shop, now), now - timedelta(days=5 + i), [sencha2])
    tea_fan = make_customer(session, shop, now)
    make_order(session, shop, tea_fan, now - timedelta(days=1), [items["tea"]])
    trained = train_shop(session, shop.id, now)
    session.refresh(shop)
    assert trained.model == serving.COLD_START and serving.status(session, shop).cold_start
    assert _names(top_n(session, shop, tea_fan.id, 1)) == ["玉露"]  # the bag sells more, but they buy tea


def test_the_choice_is_made_again_when_the_history_grows(session, clock, shop_with_history,  # type: ignore[no-untyped-def]
                                                         monkeypatch) -> None:
    shop, items, _ = shop_with_history
    assert train_shop(session, shop.id, clock.now()).model == serving.COLD_START
    monkeypatch.setattr(serving, "MIN_ORDERS_FOR_MODELS", 40)
    now = clock.now()
    for _ in range(20):
        buyer = make_customer(session, shop, now)
        make_order(session, shop, buyer, now - timedelta(days=8), [items["tea"]])
        make_order(session, shop, buyer, now - timedelta(days=2), [items["pot"]])
    retrained = train_shop(session, shop.id, now)
    session.refresh(shop)
    assert retrained.model != serving.COLD_START and not serving.status(session, shop).cold_start


def test_the_recommendation_page_says_which_model_serves_and_why(runtime, session, clock, shop_with_history) -> None:  # type: ignore[no-untyped-def]
    import re

    from fastapi.testclient import TestClient

    from plugin.web.app import create_app
    from plugin.web.deps import SESSION_COOKIE, session_cookie

    shop, _, _ = shop_with_history
    client = TestClient(create_app(runtime))
    client.cookies.set(SESSION_COOKIE, session_cookie(runtime, shop.id or 0))
    before = client.get("/app/scenarios/recommendation", headers={"accept": "text/html"}).text
    assert "まだおすすめを学習していません" in before
    train_shop(session, shop.id, clock.now())
    page = client.get("/app/scenarios/recommendation", headers={"accept": "text/html"}).text
    line = re.search(r'<p id="recommender-model" data-model="([a-z_]*)"[^>]*>(.*?)</p>', page, re.S)
    assert line and line.group(1) == "category_popularity"
    assert "カテゴリの人気商品" in line.group(2) and "300 件" in line.group(2)
    english = client.get("/app/scenarios/recommendation?lang=en", headers={"accept": "text/html"}).text
    assert "bestsellers of the categories" in english
    assert 'id="recommender"' not in client.get("/app/scenarios/winback", headers={"accept": "text/html"}).text
