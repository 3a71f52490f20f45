"""What each gate decided for an outbox row: written as short tokens, read back as sentences.

A row's `decision` holds `;`-separated tokens, in gate order:

    cap=ok | cap=deferred                   the frequency cap (another message within 24 h)
    cap=deferred@<count>/<hours>            the same under a shop's own cap (count per hours)
    quiet=ok | quiet=deferred@<UTC ISO>     quiet hours at write time (only when the cap passed)
    holdout=treatment | holdout=control@<%> the holdout group
    delivery=deferred@<UTC ISO>             cap or quiet hours again, at delivery
    channel=<name>                          first: the shop's channel rule chose this channel (it reaches them)
    channel=<name>@<other>:<why>            … this one, because the preferred <other> does not reach them
                                            (unlinked, blocked, stopped, paused, unreached)
    followup=<channel>@<hours>              a follow-up of a message on <channel> not opened within <hours>

Consent and suppression are not written: only customers who passed both become rows. Tokens,
not prose, because a large first tick writes a million rows (the English sentences cost ~7 % of
its time on SQLite) and because the merchant reads them in Japanese or English. A row written
before the tokens, later deferred at delivery, reads as its old sentences plus the new ones.

A pending row's *current* wait is read from the same tokens (`current_wait`) and said as one
sentence (`explain_wait`): the console's queue tells the merchant why each message waits.
"""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from plugin.clock import as_utc

__all__ = ["channel_chosen", "follow_up_token",
           "CAP_OK", "CAP_DEFERRED", "QUIET_OK", "TREATMENT", "cap_deferred", "quiet_deferred", "control",
           "delivery_deferred", "explain", "Wait", "current_wait", "explain_wait"]

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


_CHANNEL_WORDS = {
    "ja": {"chosen": "配信チャネル: {channel}（連携済み・受信可能なため）",
           "instead": "配信チャネル: {channel}（{other}は{why}ため）",
           "unlinked": "未連携の", "blocked": "ブロックされている", "stopped": "配信停止済みの", "paused": "一時停止中の",
           "linked": "使えない", "unreached": "届かない",
           "followup": "追いかけ配信: {channel}のメッセージが{hours}時間以内に開封されなかったため",
           "consent": "同意: {channel}の受信に同意済み、配信停止リストになし"},
    "en": {"chosen": "channel: {channel} (linked and reachable)",
           "instead": "channel: {channel} ({why} on {other})",
           "unlinked": "not linked", "blocked": "blocked the account", "stopped": "opted out", "paused": "account paused",
           "linked": "not usable", "unreached": "not reached",
           "followup": "follow-up: the {channel} message was not opened within {hours} h",
           "consent": "consent: opted in to {channel}, not suppressed"},
}


def channel_chosen(name: str) -> str:
    """The channel-choice token of a row written on channel `name`."""
    return f"channel={name}"


def follow_up_token(channel: str, hours: int) -> str:
    return f"followup={channel}@{hours}"


def _channel_sentences(part: str, locale: str) -> tuple[str, str]:
    """(the consent sentence for that channel, the choice's sentence) of a `channel=` token."""
    from plugin.channels.registry import label

    words = _CHANNEL_WORDS["en" if locale == "en" else "ja"]
    value = part.partition("=")[2]
    name, _, reason = value.partition("@")
    channel = label(name, locale)
    consent = words["consent"].format(channel=channel)
    if not reason:
        return consent, words["chosen"].format(channel=channel)
    other, _, why = reason.partition(":")
    return consent, words["instead"].format(channel=channel, other=label(other, locale), why=words.get(why, why))


def _follow_up_sentence(part: str, locale: str) -> str:
    from plugin.channels.registry import label

    channel, _, hours = part.partition("=")[2].partition("@")
    words = _CHANNEL_WORDS["en" if locale == "en" else "ja"]
    return words["followup"].format(channel=label(channel, locale), hours=hours)


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
        if part.startswith("channel="):
            sentences[0], chosen = _channel_sentences(part, locale)
            sentences.append(chosen)
        elif part.startswith("followup="):
            sentences.append(_follow_up_sentence(part, locale))
        elif token == CAP_DEFERRED and value:
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


class Wait(StrEnum):
    """Why a pending message is not sent yet (the console's queue)."""

    quiet = "quiet"  # quiet hours, until they end
    cap = "cap"  # the frequency cap: another message holds the customer's window
    at_delivery = "delivery"  # deferred at delivery: cap or quiet hours again (the caller tells which)
    retry = "retry"  # a temporary sending failure: tried again later
    delay = "delay"  # scheduled later than it was written, no gate deferred it
    due = "due"  # due now: being handed to the channel


def current_wait(decision: str, scheduled_at: datetime, now: datetime, retried: bool) -> Wait:
    """Which of the row's deferrals holds it now. A delivery deferral is appended last and its
    time is the row's due time while it holds; a retry (`retried`: the last attempt failed
    temporarily) moves the due time without a token."""
    parts = [p.strip() for p in decision.split(";") if p.strip()]
    last_delivery = next((p for p in reversed(parts) if p.startswith("delivery=deferred@")), None)
    if last_delivery is not None and _same_moment(last_delivery.partition("@")[2], scheduled_at):
        return Wait.at_delivery
    if retried:
        return Wait.retry
    if any(p.startswith("quiet=deferred@") for p in parts):
        return Wait.quiet
    if any(p.partition("@")[0] == CAP_DEFERRED for p in parts):
        return Wait.cap
    return Wait.delay if as_utc(scheduled_at) > as_utc(now) else Wait.due


_WAITS = {
    "ja": {Wait.quiet: "配信しない時間帯（{quiet}）のため、{until} まで待っています",
           Wait.cap: "頻度上限のため、{until} まで待っています",
           "cap_by": "頻度上限のため、{until} まで待っています（{higher}「{blocker}」を {blocker_at} に{blocker_state}）",
           "higher": "優先度の高い", "sent": "送信済み", "planned": "送信予定",
           Wait.retry: "一時的な送信エラーのため、{until} に再送します（{attempts}回目の送信に失敗）",
           Wait.delay: "このシナリオの待ち時間のため、{until} に送信予定です",
           Wait.due: "まもなく送信します（送信処理の順番待ち）"},
    "en": {Wait.quiet: "Waiting until {until}: quiet hours ({quiet})",
           Wait.cap: "Waiting until {until}: the frequency cap",
           "cap_by": "Waiting until {until}: the frequency cap is held by {higher}“{blocker}” ({blocker_state} {blocker_at})",
           "higher": "the higher-priority ", "sent": "sent", "planned": "due",
           Wait.retry: "A temporary sending error: retrying at {until} (attempt {attempts} failed)",
           Wait.delay: "Due at {until}: this scenario's delay",
           Wait.due: "Being sent shortly (waiting its turn)"},
}


def explain_wait(wait: Wait, until: datetime, locale: str = "ja", timezone: str = "Asia/Tokyo", *,
                 quiet: tuple[int, int] = (21, 8), attempts: int = 0, blocker: str | None = None,
                 blocker_at: datetime | None = None, blocker_sent: bool = True, blocker_higher: bool = False) -> str:
    """One sentence for a pending row's wait, times in the shop's zone. `blocker` names the
    scenario whose message holds the cap (its time and whether it was sent); a delivery
    deferral must be resolved to `Wait.quiet` or `Wait.cap` by the caller."""
    words = _WAITS["en" if locale == "en" else "ja"]
    quiet_text = f"{quiet[0]}:00–{quiet[1]:02d}:00" if locale == "en" else f"{quiet[0]}時〜{quiet[1]}時"
    fields = {"until": _local(as_utc(until).isoformat(), timezone), "quiet": quiet_text, "attempts": str(attempts)}
    if wait in (Wait.cap, Wait.at_delivery) and blocker:
        return words["cap_by"].format(**fields, blocker=blocker, higher=words["higher"] if blocker_higher else "",
                                      blocker_at=_local(as_utc(blocker_at).isoformat(), timezone) if blocker_at else "",
                                      blocker_state=words["sent" if blocker_sent else "planned"])
    return words[Wait.cap if wait == Wait.at_delivery else wait].format(**fields)


def _same_moment(text: str, moment: datetime) -> bool:
    try:
        return abs((as_utc(datetime.fromisoformat(text)) - as_utc(moment)).total_seconds()) < 1
    except ValueError:
        return False
