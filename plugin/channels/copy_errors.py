"""Why a merchant's template cannot be rendered: a kind, an English detail for logs, and the
explanation a merchant reads (Japanese or English, never Python's exception text)."""
from __future__ import annotations

__all__ = ["CopyError", "KINDS", "explain_kind", "RECORD_PREFIX"]

KINDS: dict[str, tuple[str, str]] = {
    "division_by_zero": ("0で割る計算があります", "it divides by zero"),
    "too_long": ("表示される文章が長すぎます(件名・本文の冒頭はそれぞれ5,000文字まで)",
                 "the text it makes is too long (at most 5,000 characters each for subject and opening text)"),
    "unknown_variable": ("存在しない項目を参照しています", "it uses a variable that does not exist"),
    "too_much_work": ("繰り返しや計算が多すぎます(range は1,000まで、大きすぎる数は使えません)",
                      "it does too much work (loops or ranges over 1,000 steps, or numbers too large)"),
    "too_slow": ("表示に時間がかかりすぎます", "it takes too long to render"),
    "syntax": ("テンプレートの書き方に誤りがあります", "the template has a syntax error"),
    "unsafe": ("テンプレートでは使えない機能を使っています", "it uses something templates may not use"),
    "error": ("この値では表示できない式があります", "an expression cannot be computed with these values"),
}
RECORD_PREFIX = "template failed: "


class CopyError(ValueError):
    """A merchant's subject or body template that cannot be rendered; `kind` says why (see KINDS).

    `name` is a variable the template asked for, `line` the template line, when known.
    """

    def __init__(self, kind: str, detail: str = "", *, name: str = "", line: int | None = None) -> None:
        super().__init__(detail or KINDS.get(kind, KINDS["error"])[1])
        self.kind = kind if kind in KINDS else "error"
        self.detail = detail
        self.name = name
        self.line = line

    def explain(self, lang: str) -> str:
        """The reason in the merchant's language, with the variable or line it concerns."""
        reason = explain_kind(self.kind, lang)
        if self.name:
            reason += f"({self.name})" if lang != "en" else f" ({self.name})"
        if self.line:
            reason += f"({self.line}行目)" if lang != "en" else f" (line {self.line})"
        return reason

    def record(self) -> str:
        """What an outbox row keeps as its error: the kind first, so the console can explain it."""
        return f"{RECORD_PREFIX}{self.kind}: {self}"[:1000]


def explain_kind(kind: str, lang: str) -> str:
    """One failure kind in Japanese (default) or English."""
    japanese, english = KINDS.get(kind, KINDS["error"])
    return english if lang == "en" else japanese
