"""The save check of a merchant's templates: render them for several real customers of the shop
(the first and newest, and those with an empty name, no orders or no points) and two imaginary
edge customers, and say in the merchant's language which kind of customer fails and why."""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, select
from sqlmodel import Session, col

from plugin.channels.copy_errors import RECORD_PREFIX, explain_kind
from plugin.channels.layout import CopyError, render_copy
from plugin.console.forms import SettingError
from plugin.delivery.drafts import draft_for, preview_unsubscribe_url
from plugin.storage.models import Customer, Message, Shop
from scenarios import Scenario

if TYPE_CHECKING:
    from plugin.runtime import Runtime

__all__ = ["TemplateRefused", "check_templates", "preview_draft", "failure_sentence", "FIELDS", "EDGE_NAME"]

FIELDS = {"subject_template": ("件名", "subject"), "body_template": ("本文の冒頭", "opening text")}
WHO = {
    "no_name": ("名前が空のお客様", "a customer with no name"),
    "no_orders": ("まだ注文のないお客様", "a customer with no orders yet"),
    "no_points": ("ポイントのないお客様", "a customer with no points"),
    "first": ("最初に登録されたお客様", "the first customer"),
    "newest": ("最も新しいお客様", "the newest customer"),
    "edge_empty": ("架空のお客様(名前・ポイント・注文がすべて空)", "an imaginary customer with no name, points or orders"),
    "edge_long": ("架空のお客様(登録できる最長の名前)", "an imaginary customer with the longest name the shop can hold"),
    "previewed": ("このお客様", "this customer"),
}
EDGE_NAME = "長" * 255  # Customer.name's column length


class TemplateRefused(SettingError):
    """A template that fails for one kind of customer: `explain(lang)` says which and why."""

    def __init__(self, field: str | None, who: str, customer_id: int | None, error: CopyError) -> None:
        self.field, self.who, self.customer_id, self.error = field, who, customer_id, error
        super().__init__(f"{self.explain('ja')} / {self.explain('en')}")

    def explain(self, lang: str) -> str:
        """One sentence in Japanese (default) or English, with no Python exception text."""
        en = lang == "en"
        who = WHO[self.who][1 if en else 0]
        if self.customer_id:
            who += f" (id {self.customer_id})" if en else f"(ID {self.customer_id})"
        if en:
            what = f"The {FIELDS[self.field][1]} template" if self.field else "The message"
            return f"{what} cannot be rendered for {who}: {self.error.explain('en')}."
        what = f"{FIELDS[self.field][0]}のテンプレート" if self.field else "このメッセージ"
        return f"{what}は{who}では表示できません: {self.error.explain('ja')}。"


def check_templates(runtime: Runtime, session: Session, shop: Shop, scenario: Scenario,
                    templates: dict[str, str]) -> None:
    """Render each template for every sample customer; TemplateRefused at the first that fails."""
    for who, customer_id, variables in _samples(runtime, session, shop, scenario):
        for field, source in templates.items():
            try:
                render_copy(source, variables)
            except CopyError as exc:
                raise TemplateRefused(field, who, customer_id, exc) from None


def preview_draft(runtime: Runtime, session: Session, shop: Shop, scenario: Scenario,
                  customer: Customer) -> tuple[Message, dict[str, Any]]:
    """A message as the preset would write it for this customer (never saved), and its context."""
    sample = scenario.sample_trigger(session, shop, customer)
    now = runtime.clock.now()
    draft = Message(id=0, shop_id=shop.id or 0, customer_id=customer.id or 0, scenario_key=scenario.key,
                    trigger_key=sample.key, trigger_kind=sample.kind, trigger_ref=sample.ref, trigger_step=sample.step,
                    to_address=customer.email, scheduled_at=now, created_at=now)
    return draft, scenario.contexts(session, shop, [draft]).get(0, {})


def failure_sentence(count: int, last_error: str, lang: str) -> str:
    """"N messages not sent: the template failed (reason)", from the error delivery recorded."""
    kind = last_error.removeprefix(RECORD_PREFIX).split(":", 1)[0]
    if lang == "en":
        return f"{count:,} message{'s' if count != 1 else ''} not sent: the template failed ({explain_kind(kind, 'en')})"
    return f"{count:,}件が送信されていません: テンプレートを表示できませんでした({explain_kind(kind, 'ja')})"


def _samples(runtime: Runtime, session: Session, shop: Shop, scenario: Scenario) -> Iterator[tuple[str, int | None, dict[str, Any]]]:
    """(who, customer id, template variables) of each sample, real customers first."""
    for who, customer in _sample_customers(session, shop):
        yield who, customer.id, _variables(runtime, session, shop, scenario, customer)
    now = runtime.clock.now()
    for who, name in (("edge_empty", ""), ("edge_long", EDGE_NAME)):
        edge = Customer(id=0, shop_id=shop.id or 0, external_id="", name=name, created_at=now, updated_at=now)
        yield who, None, _variables(runtime, session, shop, scenario, edge)


def _variables(runtime: Runtime, session: Session, shop: Shop, scenario: Scenario, customer: Customer) -> dict[str, Any]:
    draft, context = preview_draft(runtime, session, shop, scenario, customer)
    return draft_for(runtime, shop, scenario, draft, customer.name, context, None, preview_unsubscribe_url(runtime)).variables


def _sample_customers(session: Session, shop: Shop) -> list[tuple[str, Customer]]:
    """Real customers whose data differ the most; each counted once, under its first kind."""
    kinds: list[tuple[str, ColumnElement[bool] | None, Any]] = [
        ("no_name", col(Customer.name) == "", col(Customer.id)),
        ("no_orders", col(Customer.last_order_at).is_(None), col(Customer.id)),
        ("no_points", col(Customer.points_balance) <= 0, col(Customer.id)),
        ("first", None, col(Customer.id)),
        ("newest", None, col(Customer.id).desc()),
    ]
    found: dict[int, tuple[str, Customer]] = {}
    for who, condition, order in kinds:
        query = select(Customer).where(col(Customer.shop_id) == shop.id)
        if condition is not None:
            query = query.where(condition)
        customer = session.execute(query.order_by(order).limit(1)).scalar_one_or_none()
        if customer is not None and customer.id not in found:
            found[customer.id or 0] = (who, customer)
    return list(found.values())

