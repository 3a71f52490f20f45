"""The merchant's LINE accounts: added after the API accepted the channel access token
(GET /v2/bot/info), stored encrypted, each with the webhook URL to paste into the LINE
Developers console; which account sends each scenario; the shop's channel rule."""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlmodel import Session, col

from plugin.channels.base import OutgoingMessage, PermanentFailure, TemporaryFailure
from plugin.channels.choice import rule_of, save_rule
from plugin.channels.line import LineChannel
from plugin.channels.line_api import LineError, LineUnauthorized, LineUnavailable
from plugin.channels.line_links import issue_code, link_platform_customers, set_scenario_account
from plugin.clock import as_utc
from plugin.console.forms import SettingError
from plugin.runtime import Runtime
from plugin.storage.models import (
    Customer,
    LineAccount,
    LineLink,
    LineLinkCode,
    LinePush,
    LineScenarioAccount,
    Message,
    MessageStatus,
    Shop,
    Suppression,
)
from plugin.storage.rollup import count_cancelling

__all__ = ["link_url", "send_link_invite", "LINK_PURPOSE",
           "AccountView", "accounts_of", "add_account", "resume_account", "remove_account", "REMOVED_REASON",
           "webhook_url", "choose_account", "set_channel_rule",
           "scenario_accounts", "LINE"]

log = logging.getLogger("okaeri.line")
LINE = "line"
MAIL = "email"  # the link invitation goes by mail: it proves the customer's address
LINK_PURPOSE = "line-link"
_REFUSED = "LINE がこのチャネルアクセストークンを受け付けませんでした。 / LINE refused this channel access token."


@dataclass(frozen=True)
class AccountView:
    account: LineAccount
    webhook_url: str
    paused: bool
    linked: int
    following: int


def webhook_url(runtime: Runtime, account: LineAccount) -> str:
    return f"{runtime.settings.base_url}/line/webhook/{account.webhook_key}"


def _channel(runtime: Runtime) -> LineChannel:
    channel = runtime.channels.get(LINE)
    if not isinstance(channel, LineChannel):
        raise SettingError("LINE チャネルがこのサーバーで有効ではありません。 / The LINE channel is not enabled on this server.")
    return channel


def accounts_of(runtime: Runtime, session: Session, shop: Shop) -> list[AccountView]:
    now = runtime.clock.now()
    rows = session.execute(select(LineAccount).where(col(LineAccount.shop_id) == shop.id).order_by(col(LineAccount.id))).scalars()
    views = []
    for account in rows:
        links = session.execute(select(col(LineLink.following)).where(col(LineLink.account_id) == account.id)).scalars().all()
        paused = account.paused_until is not None and as_utc(account.paused_until) > now
        views.append(AccountView(account, webhook_url(runtime, account), paused, len(links), sum(1 for f in links if f)))
    return views


def add_account(runtime: Runtime, session: Session, shop: Shop, form: dict[str, str]) -> LineAccount:
    """Check the token with LINE, then store the account (token and secret encrypted)."""
    name, token, secret = form.get("name", "").strip(), form.get("token", "").strip(), form.get("secret", "").strip()
    channel_id = form.get("channel_id", "").strip()
    if not name or len(name) > 100:
        raise SettingError("アカウント名を100文字以内で入力してください。 / Enter an account name of at most 100 characters.")
    if not token or len(token) > 1000 or not secret or len(secret) > 100:
        raise SettingError("チャネルアクセストークンとチャネルシークレットを入力してください。 / "
                           "Enter the channel access token and the channel secret.")
    if channel_id and (not channel_id.isdigit() or len(channel_id) > 32):
        raise SettingError("チャネルIDは数字で入力してください。 / The channel ID is a number.")
    try:
        info = _channel(runtime).api.bot_info(token)
    except LineUnauthorized as exc:
        raise SettingError("LINE がこのチャネルアクセストークンを受け付けませんでした。 / LINE refused this channel access token.") from exc
    except LineUnavailable as exc:
        raise SettingError("LINE に接続できませんでした。しばらくしてからもう一度お試しください。 / "
                           "Could not reach LINE; try again in a while.") from exc
    except LineError as exc:
        raise SettingError(f"LINE がエラーを返しました（{exc.status}）。 / LINE answered with an error ({exc.status}).") from exc
    account = LineAccount(shop_id=shop.id or 0, name=name, channel_id=channel_id, bot_user_id=str(info.get("userId", ""))[:64],
                          basic_id=str(info.get("basicId", ""))[:32], display_name=str(info.get("displayName", ""))[:100],
                          webhook_key=secrets.token_urlsafe(24), secret_encrypted=runtime.cipher.encrypt(secret),
                          token_encrypted=runtime.cipher.encrypt(token), created_at=runtime.clock.now())
    session.add(account)
    session.commit()
    session.refresh(account)
    link_platform_customers(session, shop.id or 0, runtime.clock.now())  # the platform's line_uid: linked at once
    return account


def resume_account(runtime: Runtime, session: Session, shop: Shop, account_id: int, form: dict[str, str]) -> None:
    """End a pause (a new month's quota, a plan change); a new token, if given, is checked first."""
    account = session.get(LineAccount, account_id)
    if account is None or account.shop_id != shop.id:
        raise SettingError("このショップのアカウントではありません。 / Not an account of this shop.")
    values: dict[str, object] = {"paused_until": None, "pause_reason": ""}
    token = form.get("token", "").strip()
    if token:
        try:
            _channel(runtime).api.bot_info(token)
        except LineError as exc:
            raise SettingError(_REFUSED) from exc
        values["token_encrypted"] = runtime.cipher.encrypt(token)
    session.execute(update(LineAccount).where(col(LineAccount.id) == account_id).values(**values))
    session.commit()
    _channel(runtime).forget_account(account_id)


REMOVED_REASON = "LINE account removed"


def remove_account(runtime: Runtime, session: Session, shop: Shop, account_id: int) -> int:
    """Disconnect one of the shop's accounts; returns how many waiting messages were cancelled.

    Its waiting LINE messages are cancelled with the reason shown on the customer page (a row
    being sent right now fails the same way: the account is gone when the push looks it up); its
    customer links, link codes, scenario choices and retry keys go with it. Later messages to the
    customers it reached follow the channel rule without it (email, or another linked account)."""
    account = session.get(LineAccount, account_id)
    if account is None or account.shop_id != shop.id:
        raise SettingError("このショップのアカウントではありません。 / Not an account of this shop.")
    shop_id = shop.id or 0
    waiting = (col(Message.shop_id) == shop_id, col(Message.channel) == LINE,
               col(Message.to_address).startswith(f"{account_id}:"))
    count_cancelling(session, REMOVED_REASON, *waiting)
    cancelled = len(session.execute(update(Message).where(*waiting, col(Message.status) == MessageStatus.pending).values(
        status=MessageStatus.cancelled, last_error=REMOVED_REASON, lease_until=None).returning(col(Message.id))).all())
    for model in (LineLinkCode, LineLink, LineScenarioAccount, LinePush):
        session.execute(delete(model).where(col(model.account_id) == account_id))
    session.execute(delete(LineAccount).where(col(LineAccount.id) == account_id))
    session.commit()
    channel = runtime.channels.get(LINE)
    if isinstance(channel, LineChannel):  # a server without the LINE channel holds nothing of it
        channel.forget_account(account_id)
    log.info("okaeri.line.account-removed", extra={"shop_id": shop_id, "account_id": account_id, "cancelled": cancelled})
    return cancelled


def scenario_accounts(session: Session, shop: Shop) -> dict[str, int]:
    return dict(session.execute(select(col(LineScenarioAccount.scenario_key), col(LineScenarioAccount.account_id)).where(
        col(LineScenarioAccount.shop_id) == shop.id)).tuples().all())


def choose_account(session: Session, shop: Shop, scenario_key: str, account_id: str) -> None:
    try:
        set_scenario_account(session, shop.id or 0, scenario_key, int(account_id) if account_id else None)
    except ValueError as exc:
        raise SettingError("このショップのアカウントを選んでください。 / Choose one of this shop's accounts.") from exc


def set_channel_rule(runtime: Runtime, session: Session, shop: Shop, form: dict[str, str], now: datetime) -> None:
    """`rule`: "line_first" (default) or "email_only"; `follow_up`: "on" to follow unopened mail on LINE."""
    choice = form.get("rule", "line_first")
    if choice not in ("line_first", "own_only"):
        raise SettingError("配信チャネルのルールを選んでください。 / Choose a channel rule.")
    save_rule(session, shop.id or 0, [LINE] if choice == "line_first" else [], form.get("follow_up") == "on", now)


def channel_rule_choice(runtime: Runtime, session: Session, shop: Shop) -> tuple[str, bool]:
    rule = rule_of(session, shop.id or 0, runtime.channels)
    return ("line_first" if LINE in rule.preferred.split(",") else "own_only"), rule.follow_up


def link_url(runtime: Runtime, code: str) -> str:
    """The signed one-time link a customer gets by mail (plugin.channels.line_links.issue_code)."""
    return f"{runtime.settings.base_url}/line/link/{runtime.signer.dumps({'code': code}, LINK_PURPOSE)}"


_INVITE = {
    "ja": ("【{shop}】LINE 連携のご案内",
           "{name} 様\n\n{shop} の LINE 公式アカウント「{account}」と連携すると、お知らせを LINE でお届けします。\n"
           "次のリンクを開き、表示されるコードを LINE のトーク画面で送信してください（7日間有効・1回のみ）。\n\n{url}\n\n"
           "お心当たりのない場合は、このメールを破棄してください。\n\n--\n{shop}\n{address}\n"),
    "en": ("[{shop}] Link your LINE",
           "Dear {name},\n\nLink {shop}'s LINE Official Account “{account}” to get our news on LINE.\n"
           "Open this link and send the code it shows in the LINE chat (valid 7 days, once).\n\n{url}\n\n"
           "If you did not expect this, ignore this mail.\n\n--\n{shop}\n{address}\n"),
}


def send_link_invite(runtime: Runtime, session: Session, shop: Shop, customer_id: int) -> None:
    """Mail the customer a signed one-time link to link their LINE to the shop's first account."""
    customer = session.get(Customer, customer_id)
    if customer is None or customer.shop_id != shop.id or customer.deleted_at is not None:
        raise SettingError("このショップの顧客ではありません。 / Not a customer of this shop.")
    suppressed = session.execute(select(col(Suppression.id)).where(
        col(Suppression.shop_id) == shop.id, col(Suppression.channel) == MAIL, col(Suppression.address) == customer.email)).first()
    if not customer.email or not customer.email_consent or suppressed is not None:
        raise SettingError("メール受信に同意していないため、案内を送れません。 / The customer has not agreed to mail.")
    account = session.execute(select(LineAccount).where(col(LineAccount.shop_id) == shop.id)
                              .order_by(col(LineAccount.id)).limit(1)).scalar_one_or_none()
    mail = runtime.channels.get(MAIL)
    if account is None or mail is None:
        raise SettingError("LINE アカウントがまだありません。 / The shop has no LINE account yet.")
    code = issue_code(session, account, customer, runtime.clock.now())
    subject, body = _INVITE["en" if shop.locale == "en" else "ja"]
    fields = {"shop": shop.sender_name or shop.name, "name": customer.name or "お客", "account": account.display_name or account.name,
              "url": link_url(runtime, code), "address": shop.sender_address}
    try:
        mail.send(OutgoingMessage(f"<line-link.{code}@okaeri>", customer.email, customer.name, fields["shop"],
                                  subject.format(**fields), body.format(**fields), "", f"{runtime.settings.base_url}/u/preview"))
    except (TemporaryFailure, PermanentFailure) as exc:
        raise SettingError("案内メールを送れませんでした。しばらくしてからお試しください。 / "
                           "The mail could not be sent; try again later.") from exc
