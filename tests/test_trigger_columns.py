"""What triggered a message, as typed columns: migration 0014 fills them from the keys written
before it, and no trigger written before it is ever written again."""
from __future__ import annotations

import importlib.util
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData, Table, inspect, select
from sqlmodel import Session

from plugin.clock import FrozenClock
from plugin.engine.tick import run_shop_tick
from plugin.runtime import build_runtime
from plugin.settings import Settings
from plugin.storage import db
from plugin.storage.db import make_engine, migrate
from plugin.storage.models import Message, MessageStatus, Trigger
from tests.factories import enable, make_cart, make_customer, make_order, make_product, make_shop

MIGRATIONS = Path(db.__file__).parent / "migrations"
LEGACY = {  # every trigger_key format written before 0014 → what the presets now select for it
    "cart:5:3": ("cart", 5, "3"),
    "cart:5:3:2": ("cart", 5, "3:2"),
    "browse:77": ("browse", 77, None),
    "expiry:2026-12-01:30": ("expiry", None, "2026-12-01:30"),
    "expiry:2026-12-01:7": ("expiry", None, "2026-12-01:7"),
    "statement:2026-11": ("statement", None, "2026-11"),
    "ranking:2026-W48": ("ranking", None, "2026-W48"),
    "reco:order:12": ("reco:order", 12, None),
    "reco:month:2026-11": ("reco:month", None, "2026-11"),
    "post:9:thanks": ("post", 9, "thanks"),
    "post:9:d365": ("post", 9, "d365"),
    "winback:2026-05-01": ("winback", None, "2026-05-01"),
    "restock:4:2026-11-19": ("restock", 4, "2026-11-19"),
    "low:4:2026-11-19": ("low", 4, "2026-11-19"),
}


def _migration_0014() -> ModuleType:
    spec = importlib.util.spec_from_file_location("migration_0014", MIGRATIONS / "versions" / "0014_trigger_as_columns.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _downgrade(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def _legacy_row(shop_id: int, customer_id: int, scenario_key: str, trigger_key: str, at: Any, **fields: Any) -> dict[str, Any]:
    """A messages row as written at revision 0013 (the text key, the JSON context)."""
    ref = LEGACY.get(trigger_key, ("", None, None))[1]
    return {"shop_id": shop_id, "customer_id": customer_id, "scenario_key": scenario_key, "trigger_key": trigger_key,
            "channel": "email", "to_address": "a@example.jp", "subject": "", "body_text": "", "body_html": "",
            "context": '{"ref_id": %s}' % ("null" if ref is None else ref), "decision": "cap:ok",
            "status": "sent", "scheduled_at": at, "attempts": 0, "last_error": "", "created_at": at, **fields}


def _insert_legacy(engine: Engine, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        messages = Table("messages", MetaData(), autoload_with=connection)
        connection.execute(messages.insert(), rows)


def test_every_legacy_key_parses_to_what_the_presets_select_and_back_to_itself() -> None:
    parse = _migration_0014().parse_trigger_key
    for key, typed in LEGACY.items():
        assert parse(key) == typed
        assert Trigger(*typed).key == key


def test_migration_fills_the_trigger_columns_and_its_downgrade_restores_the_old_ones(database_url: str, clock: FrozenClock) -> None:
    # Given an outbox at revision 0013 holding one row of every key format
    engine = make_engine(database_url)
    migrate(engine, "0013")
    _insert_legacy(engine, [_legacy_row(1, n, "any", key, clock.now()) for n, key in enumerate(LEGACY, 1)])
    # When it is migrated to 0014
    migrate(engine, "0014")
    # Then every row says in typed columns what triggered it, and its key is untouched
    with engine.connect() as connection:
        rows = connection.execute(select(Message.trigger_key, Message.trigger_kind, Message.trigger_ref,
                                         Message.trigger_step)).all()
    assert {key: (kind, ref, step) for key, kind, ref, step in rows} == LEGACY
    assert not {"context", "body_text", "body_html"} & {c["name"] for c in inspect(engine).get_columns("messages")}
    # When it is migrated back down
    _downgrade(engine, "0013")
    # Then the old columns hold what they held, and the typed ones are gone
    with engine.connect() as connection:
        messages = Table("messages", MetaData(), autoload_with=connection)
        back = connection.execute(select(messages.c.trigger_key, messages.c.context, messages.c.body_text,
                                         messages.c.body_html)).all()
    assert sorted(back) == sorted((key, _legacy_row(1, 1, "any", key, clock.now())["context"], "", "") for key in LEGACY)
    assert not {"trigger_kind", "trigger_ref", "trigger_step"} & {c["name"] for c in inspect(engine).get_columns("messages")}
    # And up again is harmless
    migrate(engine)
    engine.dispose()


@pytest.mark.parametrize("scenario_key", ["cart_recovery", "post_purchase", "point_expiry", "recommendation"])
def test_a_trigger_written_before_the_migration_is_never_written_again(
        database_url: str, settings: Settings, clock: FrozenClock, broker: Any, scenario_key: str) -> None:
    # Given a shop at revision 0013 whose customer was already messaged for the trigger the
    # preset selects now (the cart reminders both: first and second)
    engine = make_engine(database_url)
    migrate(engine)  # the factories write today's shop rows; the outbox goes back to 0013 below
    now = clock.now()
    with Session(engine, expire_on_commit=False) as session:
        shop = make_shop(session, now)
        item = make_product(session, shop, now)
        buyer = make_customer(session, shop, now, points_balance=500, points_expire_at=now + timedelta(days=20),
                              last_order_at=now - timedelta(days=14, hours=1))
        cart = make_cart(session, shop, buyer, [item], now - timedelta(hours=25))
        order = make_order(session, shop, buyer, now - timedelta(days=14, hours=1), [item])
        enable(session, shop, scenario_key, now)
        shop_id, buyer_id = shop.id or 0, buyer.id or 0
        keys = {"cart_recovery": [f"cart:{cart.id}:{cart.revision}", f"cart:{cart.id}:{cart.revision}:2"],
                "post_purchase": [],
                "point_expiry": [f"expiry:{(now + timedelta(days=20)).strftime('%Y-%m-%d')}:30"],
                "recommendation": [f"reco:order:{order.id}", "reco:month:2026-11"]}[scenario_key]
        if scenario_key == "post_purchase":
            order = make_order(session, shop, buyer, now - timedelta(days=7, hours=1), [item])
            keys = [f"post:{order.id}:survey"]
    _downgrade(engine, "0013")
    _insert_legacy(engine, [_legacy_row(shop_id, buyer_id, scenario_key, key, now - timedelta(hours=24 + n))
                            for n, key in enumerate(keys, 1)])
    # When the outbox is migrated and the preset ticks
    migrate(engine)
    runtime = build_runtime(settings, clock=clock, broker=broker, engine=engine)
    written = run_shop_tick(runtime, shop_id)
    # Then nothing is written again
    with Session(engine) as session:
        rows = session.execute(select(Message.trigger_key, Message.status).where(Message.shop_id == shop_id)).all()
    runtime.close_channels()
    engine.dispose()
    assert written == []
    assert sorted(rows) == sorted((key, MessageStatus.sent) for key in keys)


def test_a_first_reminder_sent_before_the_migration_still_brings_the_second(
        database_url: str, settings: Settings, clock: FrozenClock, broker: Any) -> None:
    # Given a cart idle for 25 hours whose first reminder was sent at revision 0013
    engine = make_engine(database_url)
    migrate(engine)  # today's shop rows first; the outbox goes back to 0013 below
    now = clock.now()
    with Session(engine, expire_on_commit=False) as session:
        shop = make_shop(session, now)
        buyer = make_customer(session, shop, now)
        cart = make_cart(session, shop, buyer, [make_product(session, shop, now)], now - timedelta(hours=25))
        enable(session, shop, "cart_recovery", now)
    first = f"cart:{cart.id}:{cart.revision}"
    _downgrade(engine, "0013")
    _insert_legacy(engine, [_legacy_row(shop.id or 0, buyer.id or 0, "cart_recovery", first, now - timedelta(hours=24))])
    # When the outbox is migrated and the preset ticks
    migrate(engine)
    runtime = build_runtime(settings, clock=clock, broker=broker, engine=engine)
    run_shop_tick(runtime, shop.id or 0)
    # Then the second reminder is written, with the key it always had
    with Session(engine) as session:
        rows = session.execute(select(Message.trigger_key, Message.trigger_kind, Message.trigger_ref, Message.trigger_step)
                               .where(Message.shop_id == shop.id)).all()
    runtime.close_channels()
    engine.dispose()
    assert sorted(rows) == [(first, "cart", cart.id, str(cart.revision)),
                            (f"{first}:2", "cart", cart.id, f"{cart.revision}:2")]
