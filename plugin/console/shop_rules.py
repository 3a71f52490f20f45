"""The shop's rules every scenario obeys, as the merchant sets them: quiet hours and the cap."""
from __future__ import annotations

from sqlmodel import Session

from plugin.console.forms import whole_number
from plugin.storage.models import Shop

__all__ = ["set_shop_rules", "RULE_LIMITS"]

# field → (lowest, highest, 日本語名, English name)
RULE_LIMITS: dict[str, tuple[int, int, str, str]] = {
    "quiet_start_hour": (0, 23, "配信しない時間帯の開始", "quiet hours start"),
    "quiet_end_hour": (0, 23, "配信しない時間帯の終了", "quiet hours end"),
    "cap_window_hours": (1, 24 * 30, "頻度上限の期間(時間)", "cap window (hours)"),
    "cap_count": (1, 10, "期間内の上限(通)", "messages per window"),
}


def set_shop_rules(session: Session, shop: Shop, form: dict[str, str]) -> Shop:
    """Set quiet hours and the frequency cap from the settings form; SettingError says what is wrong.

    Messages already written keep their times; delivery re-checks them against the new rules.
    """
    values = {field: _whole(form.get(field, ""), field) for field in RULE_LIMITS}
    for field, value in values.items():
        setattr(shop, field, value)
    session.add(shop)
    return shop


def _whole(text: str, field: str) -> int:
    low, high, name_ja, name_en = RULE_LIMITS[field]
    return whole_number(text, low, high, name_ja, name_en)
