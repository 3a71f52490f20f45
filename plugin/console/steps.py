"""The steps of the multi-step presets, as a merchant names them.

Audiences write `trigger_step` in their own shape (scenarios/*.py): post-purchase writes the step's
name; a cart's second reminder is "<revision>:2"; a points notice is "<expiry day>:30" or ":7".
Single-step presets have one step, "all". Which step a message is in is decided once, by
`plugin.storage.rollup.step_of` (and its SQL twin `step_sql`); this module only names the steps.
"""
from __future__ import annotations

from plugin.storage.rollup import step_of

__all__ = ["STEP_NAMES", "ALL_STEPS", "step_label"]

STEP_NAMES: dict[str, dict[str, tuple[str, str]]] = {
    "post_purchase": {"thanks": ("購入お礼", "Thank-you"), "survey": ("アンケート(7日後)", "Survey (day 7)"),
                      "d30": ("30日後", "Day 30"), "d90": ("90日後", "Day 90"), "d240": ("240日後", "Day 240"),
                      "d365": ("365日後", "Day 365")},
    "cart_recovery": {"first": ("1通目のリマインド", "First reminder"),
                      "second": ("2通目のリマインド(24時間後)", "Second reminder (24 h)")},
    "point_expiry": {"d30": ("失効30日前", "30 days before expiry"), "d7": ("失効7日前", "7 days before expiry")},
}
ALL_STEPS = {"all": ("すべて", "All")}


def step_label(key: str, trigger_step: str | None, lang: str) -> str:
    """The step's name in the merchant's language; "" for a single-step preset."""
    names = STEP_NAMES.get(key)
    if not names:
        return ""
    pair = names.get(step_of(key, trigger_step))
    return "" if pair is None else pair[1] if lang == "en" else pair[0]
