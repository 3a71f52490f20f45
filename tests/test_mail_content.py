"""Every preset's mail, in Japanese and English, to ordinary and odd customers: no template
syntax left over and no empty required part (subject, greeting, main button, unsubscribe link,
items where the preset needs them), in the HTML part and the text part."""
from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import Session

from plugin.delivery.batch import deliver_batch
from plugin.engine.tick import run_shop_tick
from plugin.storage.models import Customer, Message, Product, Shop
from recommender.serving import train_shop
from scenarios import SCENARIOS, get_scenario
from tests.factories import enable, make_cart, make_customer, make_order, make_product, make_shop, make_view

MONDAY_NOON_JST = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
TEMPLATE_SYNTAX = ("{{", "}}", "{%", "%}", "{#", "#}")
# Customers as shops really have them: a plain name, none at all, no points, a very long name,
# one that looks like HTML and one that looks like a template (it must be printed, not run).
ODD_NAMES = {
    "plain": "佐藤 陽菜",
    "empty": "",
    "no_points": "鈴木 太郎",
    "long": "寿限無寿限無五劫の擦り切れ海砂利水魚の水行末雲来末風来末食う寝る処に住む処" * 4,
    "html": "<b>山田</b> & <script>alert('x')</script> \"花子\"",
    "template": "{{ 7*7 }}{% if true %}山本{% endif %}{# c #}",
}
CTA_CLASS = "background:#d35400"  # the layout's main button


def _world_cart(session: Session, shop: Shop, people: list[Customer], item: Product, now: datetime) -> None:
    for person in people:
        make_cart(session, shop, person, [item], now - timedelta(hours=2))


def _world_browse(session: Session, shop: Shop, people: list[Customer], item: Product, now: datetime) -> None:
    for person in people:
        make_view(session, shop, person, item, now - timedelta(hours=3))


def _world_recent_order(days: float) -> Callable[[Session, Shop, list[Customer], Product, datetime], None]:
    def build(session: Session, shop: Shop, people: list[Customer], item: Product, now: datetime) -> None:
        for person in people:
            at = now - timedelta(days=days)
            person.last_order_at = at
            session.add(person)
            make_order(session, shop, person, at, [item])
    return build


def _world_lapsed(session: Session, shop: Shop, people: list[Customer], item: Product, now: datetime) -> None:
    _world_recent_order(185)(session, shop, people, item, now)
    regular = make_customer(session, shop, now, email="", last_order_at=now - timedelta(days=5))  # keeps the ranking fresh
    make_order(session, shop, regular, now - timedelta(days=5), [item])


def _world_restock(session: Session, shop: Shop, people: list[Customer], item: Product, now: datetime) -> None:
    item.restocked_at = now - timedelta(hours=1)
    session.add(item)
    session.commit()
    for person in people:
        make_view(session, shop, person, item, now - timedelta(days=3))


def _world_points(session: Session, shop: Shop, people: list[Customer], item: Product, now: datetime) -> None:
    return None  # balances are on every customer but the one without points


WORLDS: dict[str, tuple[Callable[[Session, Shop, list[Customer], Product, datetime], None], datetime | None]] = {
    "cart_recovery": (_world_cart, None),
    "browse_retargeting": (_world_browse, None),
    "point_expiry": (_world_points, None),
    "point_statement": (_world_points, None),
    "ranking": (_world_recent_order(2), MONDAY_NOON_JST),
    "recommendation": (_world_recent_order(14.05), None),
    "post_purchase": (_world_recent_order(0.1), None),
    "winback": (_world_lapsed, None),
    "stock_trigger": (_world_restock, None),
}


def test_every_preset_has_a_world_here() -> None:
    assert set(WORLDS) == set(SCENARIOS)


Mails = dict[str, EmailMessage]


def _mails_for(runtime: Any, session: Session, clock: Any, catcher: Any, key: str, lang: str) -> tuple[Mails, dict[str, Customer]]:
    build, at = WORLDS[key]
    if at is not None:
        clock.at = at
    now = clock.now()
    shop = make_shop(session, now, locale=lang, name="テスト商店 <&>")
    item = make_product(session, shop, now, name="深煎り<ブレンド> & 豆", price=800, image_url="https://test.shop-pro.jp/i/1.png")
    make_product(session, shop, now, name="白い豆皿", price=1500, image_url="")  # a product without a picture
    people = {kind: make_customer(session, shop, now, name=name, points_balance=0 if kind == "no_points" else 1000,
                                  points_expire_at=None if kind == "no_points" else now + timedelta(days=5))
              for kind, name in ODD_NAMES.items()}
    build(session, shop, list(people.values()), item, now)
    session.commit()
    if key in ("ranking", "recommendation", "winback"):
        train_shop(session, shop.id or 0, now)
    enable(session, shop, key, now)
    run_shop_tick(runtime, shop.id or 0)
    ids = list(session.execute(select(Message.id).where(Message.shop_id == shop.id)).scalars())
    outcomes = deliver_batch(runtime, ids)
    reasons = dict(session.execute(select(Message.id, Message.last_error).where(Message.shop_id == shop.id)).all())
    assert {o for o, _ in outcomes.values()} <= {"sent"}, reasons
    by_address = {m["To"].addresses[0].addr_spec: m for m in catcher.snapshot()}
    return ({kind: by_address[p.email] for kind, p in people.items() if p.email in by_address}, people)


def _leftover_syntax(body: str, name: str) -> list[str]:
    """Template syntax in a rendered part, apart from the customer's own name (data, not a template)."""
    for shown in (name, html.escape(name), html.escape(name, quote=False)):
        if shown:
            body = body.replace(shown, "")
    return [s for s in TEMPLATE_SYNTAX if s in body]


def _check_greeting(text: str, name: str, lang: str) -> None:
    if lang == "ja":
        assert not re.search(r"(^|\n|>)\s*様", text), "greeting without a name"
        assert (name or "お客") in text
    else:
        assert not re.search(r"Dear\s*,", text), "greeting without a name"
        assert f"Dear {name or 'customer'}" in text


@pytest.mark.parametrize("lang", ["ja", "en"])
@pytest.mark.parametrize("key", sorted(SCENARIOS))
def test_every_preset_mail_is_complete_for_every_kind_of_customer(runtime, session, clock, catcher, key, lang) -> None:  # type: ignore[no-untyped-def]
    # Given a shop with ordinary and odd customers, each of whom this preset should write to
    scenario = get_scenario(key)
    # When the tick writes the messages and delivery renders and sends them
    mails, people = _mails_for(runtime, session, clock, catcher, key, lang)
    expected = {k for k in people if not (k == "no_points" and key.startswith("point_"))}
    # Then every one of them got a mail
    assert set(mails) == expected
    for kind, mail in mails.items():
        name = people[kind].name
        text = mail.get_body(("plain",)).get_content()
        body_html = mail.get_body(("html",)).get_content()
        subject = str(mail["Subject"])
        # no template syntax reached the subject, the text or the HTML
        for part in (subject, text, body_html):
            assert _leftover_syntax(part, name) == [], (kind, part[:400])
        # the subject says something after the shop's name
        assert re.sub(r"^[【\[].*?[】\]]", "", subject).strip(), subject
        # the greeting names the customer (or says お客様 / customer when the shop has no name)
        _check_greeting(text, name, lang)
        _check_greeting(html.unescape(body_html), name, lang)
        # an HTML-looking name is shown as text, never as markup
        assert "<script>" not in body_html and "<b>山田</b>" not in body_html
        # the main button links somewhere, in both parts
        cta = scenario.copy[lang].cta
        assert re.search(rf'<a href="http[^"]+"[^>]*{CTA_CLASS}[^>]*>{re.escape(html.escape(cta))}</a>', body_html), kind
        assert re.search(rf"{re.escape(cta)}: http\S+", text), kind
        # the unsubscribe link is there, in both parts and in the header
        assert re.search(r'<a href="http://okaeri\.test/u/[^"]+"', body_html)
        assert re.search(r"http://okaeri\.test/u/\S+", text.split("--")[-1])
        assert "http://okaeri.test/u/" in str(mail["List-Unsubscribe"])
        # a preset that is about items shows at least one, with its name and price, in both parts
        if scenario.needs_items:
            assert "深煎り&lt;ブレンド&gt; &amp; 豆" in body_html and "深煎り<ブレンド> & 豆" in text, kind
            assert ("800円" if lang == "ja" else "¥800") in text
        # no image tag without a source, no link without a target
        assert not re.search(r'<img src=""', body_html) and not re.search(r'href=""', body_html)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_a_shop_without_a_contact_address_is_reached_through_its_url(runtime, session, clock, catcher, lang) -> None:  # type: ignore[no-untyped-def]
    # Given a shop whose platform gave no owner address (the law still wants a way to reach the sender)
    now = clock.now()
    shop = make_shop(session, now, locale=lang, owner_email="")
    item = make_product(session, shop, now)
    make_cart(session, shop, make_customer(session, shop, now), [item], now - timedelta(hours=2))
    enable(session, shop, "cart_recovery", now)
    # When its cart reminder is delivered
    run_shop_tick(runtime, shop.id or 0)
    deliver_batch(runtime, list(session.execute(select(Message.id)).scalars()))
    mail, = catcher.snapshot()
    # Then both parts name the shop's site as the contact, and no empty mailto: link is left
    contact = "お問い合わせ" if lang == "ja" else "Contact"
    assert f"{contact}: https://test.shop-pro.jp" in mail.get_body(("plain",)).get_content()
    body_html = mail.get_body(("html",)).get_content()
    assert 'href="https://test.shop-pro.jp"' in body_html and 'mailto:"' not in body_html
