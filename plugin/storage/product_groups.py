"""Product-code grouping rules in SQL: which products a rule matches, and the group each product
is in once the shop's rules are applied (`Product.group_code`, kept in one UPDATE).

A rule's `codes` are product codes, one per line; `*` in a code matches any run of characters
(`TEA-*`). Rules are tried by `position`, the first that matches a product wins; a product no rule
matches keeps the platform's group (`Product.platform_group_code`). A "merge" rule puts every
product it matches in its `group_name`; a "split" rule makes each product it matches a group of
its own (`group_name:<the product's platform id>`), even where the platform gives them one code.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, String, case, false, literal, or_, select, update
from sqlmodel import Session, col

from plugin.storage.models import GroupingRule, Product

__all__ = ["rule_codes", "matches", "grouped_as", "shop_rules", "apply_grouping_rules"]


def rule_codes(codes: str) -> list[str]:
    """The codes and patterns of a rule's text: one per line (commas also separate), blanks dropped."""
    return [code.strip() for line in codes.replace(",", "\n").splitlines() if (code := line.strip())]


def _like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def matches(codes: str) -> ColumnElement[bool]:
    """True for products whose code is one of `codes` or fits one of its patterns."""
    entries = rule_codes(codes)
    exact = [c for c in entries if "*" not in c]
    patterns = [col(Product.code).like(_like(c), escape="\\") for c in entries if "*" in c]
    terms = ([col(Product.code).in_(exact)] if exact else []) + patterns
    return or_(*terms) if terms else false()


def grouped_as(rule: GroupingRule) -> ColumnElement[str]:
    """The group a product this rule matches is put in."""
    if rule.action == "split":
        return literal(f"{rule.group_name}:", String) + col(Product.external_id)
    return literal(rule.group_name, String)


def shop_rules(session: Session, shop_id: int) -> list[GroupingRule]:
    """The shop's rules in the order they are tried."""
    return list(session.execute(select(GroupingRule).where(col(GroupingRule.shop_id) == shop_id)
                                .order_by(col(GroupingRule.position), col(GroupingRule.id))).scalars())


def group_expression(rules: Sequence[GroupingRule]) -> ColumnElement[str] | Any:
    """`Product.group_code` as the rules make it: the first matching rule's group, else the platform's."""
    if not rules:
        return col(Product.platform_group_code)
    return case(*[(matches(r.codes), grouped_as(r)) for r in rules], else_=col(Product.platform_group_code))


def apply_grouping_rules(session: Session, shop_id: int, external_ids: Iterable[str] | None = None) -> None:
    """Set the group of the shop's products (or only those given) by its rules, in one UPDATE."""
    query = update(Product).where(col(Product.shop_id) == shop_id)
    if external_ids is not None:
        query = query.where(col(Product.external_id).in_(list(external_ids)))
    session.execute(query.values(group_code=group_expression(shop_rules(session, shop_id))))
