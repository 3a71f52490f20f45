"""The shop's rules every scenario obeys, as the merchant sets them: quiet hours and the cap; the
holdout share the one switch gives each preset, the sender name; the point expiry months."""
from __future__ import annotations

from sqlmodel import Session

from plugin.console.forms import SettingError, whole_number
from plugin.storage.models import Shop
from plugin.storage.point_expiry import MONTHS_RANGE, refresh_point_expiry

__all__ = ["set_shop_rules", "set_sending_rules", "set_point_expiry", "RULE_LIMITS", "SENDER_NAME_MAX"]

# field → (lowest, highest, 日本語名, English name)
RULE_LIMITS: dict[str, tuple[int, int, str, str]] = {
    "quiet_start_hour": (0, 23, "配信しない時間帯の開始", "quiet hours start"),
    "quiet_end_hour": (0, 23, "配信しない時間帯の終了", "quiet hours end"),
    "cap_window_hours": (1, 24 * 30, "頻度上限の期間(時間)", "cap window (hours)"),
    "cap_count": (1, 10, "期間内の上限(通)", "messages per window"),
    "default_holdout_percent": (0, 50, "効果測定用に配信しない割合の初期値(%)", "default holdout (%)"),
    "points_expiry_months": (*MONTHS_RANGE, "ポイントの有効期限(最終購入からの月数)", "point expiry (months after the last order)"),
}
SENDER_NAME_MAX = 100


def set_shop_rules(session: Session, shop: Shop, form: dict[str, str]) -> Shop:
    """Set quiet hours and the frequency cap from the rules form; SettingError says what is wrong.

    Messages already written keep their times; delivery re-checks them against the new rules.
    """
    _set(shop, form, ("quiet_start_hour", "quiet_end_hour", "cap_window_hours", "cap_count"))
    session.add(shop)
    return shop


def set_sending_rules(session: Session, shop: Shop, form: dict[str, str]) -> Shop:
    """Set the default holdout share (for presets the one switch writes from now on) and the
    sender name (the From header's display name; empty: the shop's name)."""
    name = " ".join((form.get("sender_name") or "").split())  # one line: a header never carries a line break
    if len(name) > SENDER_NAME_MAX:
        raise SettingError(f"差出人名は{SENDER_NAME_MAX}文字以内で入力してください / "
                           f"the sender name must be at most {SENDER_NAME_MAX} characters")
    _set(shop, form, ("default_holdout_percent",))
    shop.sender_name = name
    session.add(shop)
    return shop


def set_point_expiry(session: Session, shop: Shop, form: dict[str, str]) -> Shop:
    """Set after how many months since the last order points expire, and recompute every
    customer's expiry date at once (one UPDATE) — only for platforms whose data has no dates."""
    _set(shop, form, ("points_expiry_months",))
    session.add(shop)
    session.flush()
    refresh_point_expiry(session, shop.id or 0, shop.points_expiry_months)
    return shop


def _set(shop: Shop, form: dict[str, str], fields: tuple[str, ...]) -> None:
    values = {field: _whole(form.get(field, ""), field) for field in fields}  # all checked before any is set
    for field, value in values.items():
        setattr(shop, field, value)


def _whole(text: str, field: str) -> int:
    low, high, name_ja, name_en = RULE_LIMITS[field]
    return whole_number(text, low, high, name_ja, name_en)
