"""Reading what a merchant typed into a settings form: one refusal, said in Japanese and English."""
from __future__ import annotations

__all__ = ["SettingError", "whole_number"]


class SettingError(ValueError):
    """A setting a merchant entered that cannot be used; the message says why ("日本語 / English")."""


def whole_number(text: str, low: int, high: int, name_ja: str, name_en: str) -> int:
    """`text` as an integer from `low` to `high`; SettingError naming the field otherwise."""
    try:
        value = int(text.strip())
    except ValueError:
        raise SettingError(f"{name_ja}は整数で入力してください / {name_en} must be a whole number") from None
    if not low <= value <= high:
        raise SettingError(f"{name_ja}は{low}〜{high}の範囲で入力してください / {name_en} must be between {low} and {high}")
    return value
