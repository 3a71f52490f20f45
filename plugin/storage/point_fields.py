"""The customer fields a merchant names for point data, on platforms without native points.

A field is `namespace.key` (how such platforms name a custom field, e.g. `loyalty.points`): letters,
digits, `_` and `-`, a namespace of 2-255 characters and a key of 2-64. One names the balance (an
integer or decimal), an optional second one the expiry date. Without a balance field the point
presets are unavailable, and say why (scenarios.points).
"""
from __future__ import annotations

import re
from datetime import datetime

from sqlmodel import Session

from plugin.storage.models import PointFields, Shop

__all__ = ["point_fields", "store_point_fields", "FIELD_PATTERN", "NO_FIELD_REASON"]

FIELD_PATTERN = re.compile(r"[A-Za-z0-9_-]{2,255}\.[A-Za-z0-9_-]{2,64}", re.ASCII)
NO_FIELD_REASON = ("ポイント残高を持つ顧客メタフィールド(namespace.key)が設定されていません。設定ページで指定してください"
                   " / no customer metafield (namespace.key) holding the point balance is set: name it on the settings page")


def point_fields(session: Session, shop: Shop, required: bool) -> PointFields | None:
    """The shop's point fields; for a platform that requires them, an empty row is made the first time
    (so the presets can say what is missing), else None when the merchant named none."""
    held = session.get(PointFields, shop.id)
    if held is None and required:
        held = PointFields(shop_id=shop.id or 0, updated_at=shop.created_at)
        session.add(held)
        session.commit()
    return held


def store_point_fields(session: Session, shop: Shop, balance_field: str, expiry_field: str, now: datetime) -> PointFields:
    """Store the fields a merchant named (checked by plugin.console.point_fields); the caller commits."""
    row = session.get(PointFields, shop.id) or PointFields(shop_id=shop.id or 0, updated_at=now)
    row.balance_field, row.expiry_field, row.updated_at = balance_field, expiry_field, now
    session.add(row)
    return row
