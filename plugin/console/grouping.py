"""The merchant's product-code grouping rules: add, remove, and preview what each one matches
(plugin.storage.product_groups holds the rule's SQL and applies the rules to the products)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, not_, select
from sqlmodel import Session, col

from plugin.console.forms import SettingError
from plugin.storage.models import GroupingRule, Product, Shop
from plugin.storage.product_groups import apply_grouping_rules, grouped_as, matches, rule_codes, shop_rules

__all__ = ["add_rule", "remove_rule", "rule_previews", "preview_codes", "RulePreview", "MAX_RULES", "PREVIEW_ROWS"]

MAX_RULES = 100
MAX_CODES = 50
PREVIEW_ROWS = 10
ACTIONS = ("merge", "split")


@dataclass(frozen=True)
class RulePreview:
    """One rule with the products it decides (those an earlier rule took are not counted)."""

    rule: GroupingRule | None
    codes: list[str]
    total: int
    products: list[dict[str, Any]]


def _refuse(ja: str, en: str) -> SettingError:
    return SettingError(f"{ja} / {en}")


def _checked(form: dict[str, str]) -> tuple[str, str, str]:
    """(action, codes one per line, group name) from the form; SettingError says what is wrong."""
    action = form.get("action") or "merge"
    if action not in ACTIONS:
        raise _refuse("まとめ方は「まとめる」か「分ける」を選んでください", "choose merge or split")
    codes = rule_codes(form.get("codes") or "")
    if not codes:
        raise _refuse("商品コード(型番)を1つ以上入力してください", "enter at least one product code")
    if len(codes) > MAX_CODES:
        raise _refuse(f"商品コードは1つのルールに{MAX_CODES}個までです", f"at most {MAX_CODES} codes per rule")
    if any(len(c) > 128 or c.strip("*") == "" for c in codes):
        raise _refuse("商品コードは128文字以内で、「*」だけのものは使えません",
                      "a code is at most 128 characters and cannot be only '*'")
    group = " ".join((form.get("group_name") or "").split())
    if not group and action == "merge":
        raise _refuse("まとめた商品グループの名前を入力してください", "enter the name of the product group")
    if len(group) > 80:
        raise _refuse("グループ名は80文字以内で入力してください", "the group name must be at most 80 characters")
    return action, "\n".join(codes), group or codes[0].replace("*", "")


def add_rule(session: Session, shop: Shop, form: dict[str, str], now: datetime) -> GroupingRule:
    """Add a rule after the shop's others and regroup its products at once."""
    action, codes, group = _checked(form)
    count, last = session.execute(select(func.count(), func.max(GroupingRule.position))
                                  .where(col(GroupingRule.shop_id) == shop.id)).one()
    if count >= MAX_RULES:
        raise _refuse(f"ルールは{MAX_RULES}個までです", f"at most {MAX_RULES} rules per shop")
    rule = GroupingRule(shop_id=shop.id or 0, position=(last or 0) + 1, action=action, codes=codes,
                        group_name=group, created_at=now)
    session.add(rule)
    session.flush()
    apply_grouping_rules(session, shop.id or 0)
    return rule


def remove_rule(session: Session, shop: Shop, rule_id: int) -> GroupingRule | None:
    """Remove one of the shop's rules (None if it has no such rule) and regroup its products."""
    rule = session.execute(select(GroupingRule).where(col(GroupingRule.shop_id) == shop.id,
                                                      col(GroupingRule.id) == rule_id)).scalar_one_or_none()
    if rule is not None:
        session.delete(rule)
        session.flush()
        apply_grouping_rules(session, shop.id or 0)
    return rule


def _products(session: Session, shop: Shop, decided: Any, group: Any) -> tuple[int, list[dict[str, Any]]]:
    where = and_(col(Product.shop_id) == shop.id, decided)
    total = session.execute(select(func.count()).where(where)).scalar_one()
    rows = session.execute(select(col(Product.code), col(Product.name), col(Product.platform_group_code), group)
                           .where(where).order_by(col(Product.code), col(Product.id)).limit(PREVIEW_ROWS)).all()
    return total, [{"code": code, "name": name, "platform_group": platform, "group": to} for code, name, platform, to in rows]


def rule_previews(session: Session, shop: Shop) -> list[RulePreview]:
    """Each rule of the shop with the products it decides: a count and the first PREVIEW_ROWS."""
    previews: list[RulePreview] = []
    taken: list[Any] = []
    for rule in shop_rules(session, shop.id or 0):
        condition = matches(rule.codes)
        total, products = _products(session, shop, and_(condition, *[not_(t) for t in taken]), grouped_as(rule))
        previews.append(RulePreview(rule, rule_codes(rule.codes), total, products))
        taken.append(condition)
    return previews


def preview_codes(session: Session, shop: Shop, form: dict[str, str]) -> RulePreview:
    """What a rule not yet saved would match (before the shop's rules: nothing is taken away)."""
    action, codes, group = _checked(form)
    draft = GroupingRule(shop_id=shop.id or 0, action=action, codes=codes, group_name=group,
                         created_at=datetime.fromtimestamp(0, UTC))  # never saved
    total, products = _products(session, shop, matches(codes), grouped_as(draft))
    return RulePreview(None, rule_codes(codes), total, products)
