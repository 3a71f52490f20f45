"""What each gate decided for an outbox row: written as short tokens, read back as sentences.

A row's `decision` holds `;`-separated tokens, in gate order:

    cap=ok | cap=deferred                   the frequency cap (another message within 24 h)
    cap=deferred@<count>/<hours>            the same under a shop's own cap (count per hours)
    quiet=ok | quiet=deferred@<UTC ISO>     quiet hours at write time (only when the cap passed)
    holdout=treatment | holdout=control@<%> the holdout group
    delivery=deferred@<UTC ISO>             cap or quiet hours again, at delivery

Consent and suppression are not written: only customers who passed both become rows. Tokens,
not prose, because a large first tick writes a million rows (the English sentences cost ~7 % of
its time on SQLite) and because the merchant reads them in Japanese or English. A row written
before the tokens, later deferred at delivery, reads as its old sentences plus the new ones.
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

__all__ = ["CAP_OK", "CAP_DEFERRED", "QUIET_OK", "TREATMENT", "cap_deferred", "quiet_deferred", "control",
           "delivery_deferred", "explain"]

CAP_OK = "cap=ok"
CAP_DEFERRED = "cap=deferred"
QUIET_OK = "quiet=ok"
TREATMENT = "holdout=treatment"

_SENTENCES = {
    "ja": {"consent": "同意: メール受信に同意済み、配信停止リストになし", "cap=ok": "頻度上限: 問題なし",
           "cap=deferred": "頻度上限: 24時間以内に別のメッセージがあるため延期（深夜帯は配信時に確認）",
           "cap=deferred@": "頻度上限: {hours}時間以内に{count}通の上限に達したため延期（深夜帯は配信時に確認）",
           "quiet=ok": "深夜帯: 問題なし", "quiet=deferred": "深夜帯: {at} まで延期",
           "holdout=treatment": "ホールドアウト: 配信グループ", "holdout=control": "ホールドアウト: 対照群（{at}%）のため送信しない",
           "delivery=deferred": "配信時: 頻度上限または深夜帯のため {at} まで延期"},
    "en": {"consent": "consent: opted in, not suppressed", "cap=ok": "frequency cap: ok",
           "cap=deferred": "frequency cap: deferred 24 h after another message (quiet hours checked at delivery)",
           "cap=deferred@": "frequency cap: {count} per {hours} h reached, deferred (quiet hours checked at delivery)",
           "quiet=ok": "quiet hours: ok", "quiet=deferred": "quiet hours: deferred to {at}",
           "holdout=treatment": "holdout: treatment group", "holdout=control": "holdout: control group ({at}%), not sent",
           "delivery=deferred": "at delivery: deferred to {at} (frequency cap or quiet hours)"},
}


def cap_deferred(count: int, hours: int) -> str:
    """The cap's token; the plain one for the default cap of one per 24 h."""
    return CAP_DEFERRED if (count, hours) == (1, 24) else f"{CAP_DEFERRED}@{count}/{hours}"


def quiet_deferred(at: datetime) -> str:
    return f"quiet=deferred@{at.isoformat()}"


def control(percent: int) -> str:
    return f"holdout=control@{percent}"


def delivery_deferred(at: datetime) -> str:
    return f"delivery=deferred@{at.isoformat()}"


def explain(decision: str, locale: str = "ja", timezone: str = "Asia/Tokyo") -> list[str]:
    """The row's decision as sentences, times in the shop's zone. Rows written before the tokens
    (English prose) come back as they were written."""
    words = _SENTENCES["en" if locale == "en" else "ja"]
    parts = [p.strip() for p in decision.split(";") if p.strip()]
    if not any("=" in p for p in parts):
        return parts
    sentences = [words["consent"]]
    for part in parts:
        token, _, value = part.partition("@")
        if token == CAP_DEFERRED and value:
            count, _, hours = value.partition("/")
            sentences.append(words["cap=deferred@"].format(count=count, hours=hours))
        elif token not in words:
            sentences.append(part)
        elif value and token != "holdout=control":
            sentences.append(words[token].format(at=_local(value, timezone)))
        else:
            sentences.append(words[token].format(at=value))
    return sentences


def _local(moment: str, timezone: str) -> str:
    try:
        return datetime.fromisoformat(moment).astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return moment
