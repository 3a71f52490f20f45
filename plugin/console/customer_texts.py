"""The customer page's words, in Japanese (default) and English: headings, states, and why a
message was held back, cancelled or failed (from the reason its row recorded)."""
from __future__ import annotations

from plugin.storage.delivery_reports import SOFT_LIMIT, SOFT_WINDOW

__all__ = ["TEXT", "customer_texts", "STATES", "REPORTS", "reason_text"]

_DAYS = SOFT_WINDOW.days

TEXT: dict[str, dict[str, str]] = {
    "ja": {
        "customers": "顧客", "search": "検索", "search_label": "メールアドレス・お名前・顧客ID",
        "search_help": "メールアドレス、お名前(一部でも可)、または顧客ID・ショップの顧客番号を入力して検索してください。",
        "no_results": "「{q}」に一致するお客様は見つかりませんでした。メールアドレスの綴りや、お名前の一部で試してください。",
        "results": "「{q}」の検索結果", "next": "次へ", "previous": "前へ", "email": "メールアドレス", "name": "お名前",
        "id": "顧客ID", "external_id": "ショップの顧客番号", "last_order": "最終購入日", "back": "顧客検索に戻る",
        "orders": "購入履歴", "orders_none": "まだ購入はありません。",
        "orders_count": "全{count}件・合計{total}(新しい順に最大{shown}件を表示)",
        "date": "日時", "total": "金額", "order_items": "商品", "canceled": "キャンセル",
        "points": "ポイント", "balance": "残高", "expires": "有効期限", "expiry_source": "有効期限の根拠",
        "no_points": "ポイント残高はありません。", "no_expiry": "有効期限の情報はありません。",
        "from_platform": "{platform} のデータ(同期した有効期限)",
        "from_rule": "ショップのルール: 最終購入日({last_order})から{months}か月後",
        "change_rule": "ルールを変更する",
        "from_rule_no_order": "ショップのルール: 最終購入日から{months}か月後(購入履歴がないため期限なし)",
        "consent": "配信の同意", "channel": "チャネル", "address": "宛先", "state": "状態",
        "consented": "同意あり", "not_consented": "同意なし", "no_address": "宛先なし",
        "suppressed": "配信停止リスト: {reason}({at})", "records": "同意の記録", "records_none": "記録はまだありません。",
        "opt_in": "同意", "opt_out": "同意の取り消し", "source": "経路", "consent_at": "同意日時",
        "timeline": "メッセージの履歴", "timeline_help": "このお客様に対して検討されたすべてのメッセージです(新しい順)。",
        "timeline_none": "このお客様にはまだメッセージが検討されていません。定番シナリオをONにすると、次の処理から表示されます。",
        "scenario": "シナリオ", "step": "ステップ", "scheduled": "予定日時", "sent_at": "送信日時", "created": "検討日時",
        "why": "判断の理由", "error": "エラー内容", "opens": "開封", "clicks": "クリック", "conversions": "成果(注文)",
        "times": "{count}回(最初 {at})", "order_ref": "注文 {ref} {total}({at})", "page": "{page}ページ目",
        "not_found": "このお客様は見つかりません。このショップの顧客ではないか、削除された可能性があります。",
        "unsubscribed": "配信停止", "bounced": "不達(バウンス)", "blocked": "ブロック", "email_channel": "メール", "line_channel": "LINE",
        "complained": "迷惑メール報告", "reports": "不達・迷惑メール報告",
        "reports_help": "受信側から届いた不達通知(バウンス)と迷惑メール報告です。宛先不明と迷惑メール報告はすぐに、"
                        f"一時的な不達は{_DAYS}日以内に{SOFT_LIMIT}回で配信停止になります。",
        "soft_recent": f"一時的な不達: 直近{_DAYS}日で{{count}}回({SOFT_LIMIT}回で配信停止)", "report_of_message": "受信側からの報告",
    },
    "en": {
        "customers": "Customers", "search": "Search", "search_label": "Email, name or customer id",
        "search_help": "Type an email address, a name (or part of one), or a customer id or the shop's customer number.",
        "no_results": "No customer matches “{q}”. Check the email's spelling, or try part of the name.",
        "results": "Results for “{q}”", "next": "Next", "previous": "Previous", "email": "Email", "name": "Name",
        "id": "Customer id", "external_id": "Shop's customer number", "last_order": "Last order", "back": "Back to search",
        "orders": "Orders", "orders_none": "No orders yet.", "orders_count": "{count} in all, {total} (latest {shown} shown)",
        "date": "Date", "total": "Total", "order_items": "Items", "canceled": "cancelled",
        "points": "Points", "balance": "Balance", "expires": "Expires", "expiry_source": "Where the expiry comes from",
        "no_points": "No points balance.", "no_expiry": "No expiry is known.",
        "from_platform": "{platform}'s data (the expiry synced from the shop)",
        "from_rule": "The shop's rule: {months} months after the last order ({last_order})",
        "change_rule": "change the rule",
        "from_rule_no_order": "The shop's rule: {months} months after the last order (no order yet, so no expiry)",
        "consent": "Consent", "channel": "Channel", "address": "Address", "state": "State",
        "consented": "opted in", "not_consented": "not opted in", "no_address": "no address",
        "suppressed": "suppressed: {reason} ({at})", "records": "Consent record", "records_none": "No record yet.",
        "opt_in": "opted in", "opt_out": "opted out", "source": "Source", "consent_at": "Opted in at",
        "timeline": "Messages", "timeline_help": "Every message considered for this customer, newest first.",
        "timeline_none": "No message has been considered for this customer yet. Once the standard scenarios are on, "
                         "the next run shows them here.",
        "scenario": "Scenario", "step": "Step", "scheduled": "Scheduled", "sent_at": "Sent", "created": "Considered",
        "why": "Why", "error": "Error", "opens": "Opens", "clicks": "Clicks", "conversions": "Orders attributed",
        "times": "{count} (first {at})", "order_ref": "order {ref} {total} ({at})", "page": "page {page}",
        "not_found": "This customer cannot be found: not a customer of this shop, or removed.",
        "unsubscribed": "unsubscribed", "bounced": "bounced", "blocked": "blocked", "email_channel": "Email", "line_channel": "LINE",
        "complained": "spam complaint", "reports": "Bounces and complaints",
        "reports_help": "Bounce notices and spam complaints the receiving side sent back. An unknown address or a complaint "
                        f"suppresses at once; soft bounces suppress at {SOFT_LIMIT} within {_DAYS} days.",
        "soft_recent": f"Soft bounces: {{count}} in the last {_DAYS} days (suppressed at {SOFT_LIMIT})",
        "report_of_message": "Reported by the receiver",
    },
}

# A timeline row's state, by what happened to the message.
STATES: dict[str, dict[str, str]] = {
    "ja": {"sent": "送信済み", "scheduled": "送信予定", "deferred": "延期中", "retrying": "再送待ち", "sending": "送信中",
           "held_back": "送信見送り", "control": "対照群(送信しない)", "cancelled": "取り消し", "failed": "失敗"},
    "en": {"sent": "Sent", "scheduled": "Scheduled", "deferred": "Deferred", "retrying": "Retrying", "sending": "Sending",
           "held_back": "Held back", "control": "Control (not sent)", "cancelled": "Cancelled", "failed": "Failed"},
}

# A delivery report's kind (plugin.storage.models.ReportKind), as the merchant reads it.
REPORTS: dict[str, dict[str, str]] = {
    "ja": {"hard_bounce": "配信停止（不達）", "soft_bounce": "一時的な不達", "complaint": "配信停止（迷惑メール報告）"},
    "en": {"hard_bounce": "Suppressed (bounced)", "soft_bounce": "Soft bounce", "complaint": "Suppressed (spam complaint)"},
}

# What a row's recorded reason (`last_error`) means, by its beginning; the first match wins.
_REASONS: list[tuple[str, str, str]] = [
    ("suppressed: unsubscribed", "お客様が配信停止したため送信を見送りました", "the customer unsubscribed, so it was not sent"),
    ("suppressed: bounced", "宛先に届かなかった(バウンス)ため配信停止リストに入り、送信を見送りました",
     "the address bounced and was suppressed, so it was not sent"),
    ("suppressed: complained", "お客様が迷惑メールとして報告したため配信停止リストに入り、送信を見送りました",
     "the customer reported a mail as spam and was suppressed, so it was not sent"),
    ("suppressed: blocked", "お客様にブロックされたため送信を見送りました", "the customer blocked the shop, so it was not sent"),
    ("suppressed or no consent", "配信時に同意がない、または配信停止リストにあったため送信を見送りました",
     "at delivery the customer had no consent or was suppressed, so it was not sent"),
    ("stock:", "おすすめする商品がすべて在庫切れになったため送信を見送りました",
     "every promoted item was out of stock, so it was not sent"),
    ("exit condition", "配信前に対象外になった(購入済みなど)ため送信を見送りました",
     "the customer no longer qualified before delivery (e.g. they ordered), so it was not sent"),
    ("scenario switched off", "シナリオが停止されたため取り消しました", "the scenario was switched off"),
    ("LINE account removed", "LINE アカウントの連携が削除されたため取り消しました", "the LINE account was removed, so it was cancelled"),
    ("shop uninstalled", "アプリがアンインストールされたため取り消しました", "the app was uninstalled"),
    ("shop is not active", "ショップでアプリが有効でないため取り消しました", "the app was not active in the shop"),
    ("gave up:", "何度か再送しましたが届かなかったため中止しました", "retried several times without success, then gave up"),
]
HELD_BACK = ("suppressed", "stock:", "exit condition")  # the gates kept it back; the rest were cancelled by the merchant or the app


def customer_texts(lang: str) -> dict[str, str]:
    """The page's words in `lang` (Japanese unless English)."""
    return TEXT["en" if lang == "en" else "ja"]


def reason_text(recorded: str, lang: str) -> str | None:
    """A recorded cancel or failure reason as a sentence in `lang`; None when it is not one we know."""
    for start, japanese, english in _REASONS:
        if recorded.startswith(start):
            return english if lang == "en" else japanese
    return None
