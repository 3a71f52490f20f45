"""The settings form's point fields: what a merchant types, checked before it is stored."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from plugin.console.forms import SettingError
from plugin.storage.models import PointFields, Shop
from plugin.storage.point_fields import FIELD_PATTERN, store_point_fields

__all__ = ["save_point_fields"]


def _field(value: str, label: tuple[str, str]) -> str:
    value = value.strip()
    if value and not FIELD_PATTERN.fullmatch(value):
        raise SettingError(f"{label[0]}は namespace.key の形で指定してください(英数字・_・-)"
                           f" / {label[1]} must be namespace.key (letters, digits, _ and -)")
    return value


def save_point_fields(session: Session, shop: Shop, balance: str, expiry: str, now: datetime) -> PointFields:
    """Store what the merchant named ("" clears); SettingError (Japanese / English) for a malformed field."""
    balance_field = _field(balance, ("ポイント残高のフィールド", "the balance field"))
    expiry_field = _field(expiry, ("有効期限のフィールド", "the expiry field"))
    if expiry_field and not balance_field:
        raise SettingError("有効期限のフィールドだけでは使えません。残高のフィールドも指定してください"
                           " / an expiry field needs a balance field too")
    row = store_point_fields(session, shop, balance_field, expiry_field, now)
    session.commit()
    return row
