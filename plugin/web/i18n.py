"""Page text in Japanese (default) and English, and which of the two a request wants."""
from __future__ import annotations

from starlette.requests import HTTPConnection

__all__ = ["TEXT", "texts", "request_lang", "ERRORS", "STATUS", "error_text", "status_text"]

TEXT: dict[str, dict[str, str]] = {
    "ja": {
        "settings": "設定", "standard": "定番シナリオ", "on": "ON", "off": "OFF",
        "turn_on": "定番シナリオをまとめてONにする", "turn_off": "定番シナリオをすべて停止する",
        "standard_help": "ボタンひとつで、ショップのデータで動かせる定番シナリオがすべて既定の設定で動き始めます。",
        "sync": "データ同期", "customers": "顧客", "products": "商品", "orders": "受注",
        "last_sync": "最終同期", "never": "未同期", "scenario": "シナリオ", "state": "状態",
        "sent": "送信済み", "pending": "送信待ち", "cancelled": "取り消し", "failed": "失敗",
        "messages": "配信状況", "language": "English", "unsubscribe_title": "配信停止",
        "unsubscribe_ask": "{shop} からのメール配信を停止しますか？", "unsubscribe_button": "配信を停止する",
        "unsubscribed": "配信を停止しました。今後 {shop} からのお知らせメールは届きません。",
        "preview_unsubscribe": "これはプレビュー・テスト送信用のリンクです。配信停止は行われていません。",
        "invalid_link": "このリンクは無効です。", "note": "お知らせ", "control": "効果測定用(非配信)",
        "install_failed": "インストールを完了できませんでした",
        "foreign_account": "{platform} のアカウント {granted} で許可されましたが、インストール中のショップは {expected} です。"
                           "{expected} のショップにログインし直してから、もう一度インストールしてください。"
                           "このとき発行されたアクセス権は使わず、保存もしていません。",
        "preview": "プレビュー", "tune": "詳細設定", "delay": "配信までの待ち時間(分)", "holdout": "効果測定用に配信しない割合(%)",
        "subject": "件名", "body": "本文の冒頭", "save": "保存", "test_send": "自分宛てにテスト送信",
        "reports": "効果レポート(JSON)",
        "rules": "配信ルール(全シナリオ共通)", "quiet_hours": "配信しない時間帯", "quiet_to": "時 〜", "hour": "時",
        "quiet_help": "この時間帯に届くはずのメッセージは、終了時刻まで待ってから送ります(開始と終了が同じなら制限なし)。",
        "cap": "頻度上限", "cap_window": "時間に", "cap_count": "通まで",
        "error_code": "エラーコード",
        "cap_help": "1人のお客様に送るシナリオメッセージの上限です。上限を超えた分は優先度の低いものから延期します。",
    },
    "en": {
        "settings": "Settings", "standard": "Standard scenarios", "on": "ON", "off": "OFF",
        "turn_on": "Turn on the standard scenarios", "turn_off": "Stop all standard scenarios",
        "standard_help": "One button starts every standard scenario your shop's data supports, with sensible defaults.",
        "sync": "Data sync", "customers": "Customers", "products": "Products", "orders": "Orders",
        "last_sync": "Last sync", "never": "not yet", "scenario": "Scenario", "state": "State",
        "sent": "Sent", "pending": "Pending", "cancelled": "Cancelled", "failed": "Failed",
        "messages": "Messages", "language": "日本語", "unsubscribe_title": "Unsubscribe",
        "unsubscribe_ask": "Stop emails from {shop}?", "unsubscribe_button": "Unsubscribe",
        "unsubscribed": "You are unsubscribed. {shop} will not send you marketing email any more.",
        "preview_unsubscribe": "This link belongs to a preview or test message: nobody was unsubscribed.",
        "invalid_link": "This link is not valid.", "note": "Note", "control": "Control (not sent)",
        "install_failed": "The install could not be completed",
        "foreign_account": "Access was granted by the {platform} account {granted}, but the shop being installed is "
                           "{expected}. Log in to {expected}'s shop and install again. The access granted this time "
                           "was not used and has not been stored.",
        "preview": "Preview", "tune": "Tune", "delay": "Delay (minutes)", "holdout": "Holdout (%)",
        "subject": "Subject", "body": "Opening text", "save": "Save", "test_send": "Send me a test",
        "reports": "Reports (JSON)",
        "rules": "Sending rules (all scenarios)", "quiet_hours": "Quiet hours", "quiet_to": ":00 to", "hour": ":00",
        "quiet_help": "Messages due in these hours wait until they end (the same start and end: no quiet hours).",
        "cap": "Frequency cap", "cap_window": "hours:", "cap_count": "messages at most",
        "error_code": "Error code",
        "cap_help": "The most scenario messages one customer receives; the lower-priority ones wait.",
    },
}


def texts(lang: str) -> dict[str, str]:
    return TEXT.get(lang, TEXT["ja"])


def request_lang(request: HTTPConnection) -> str:
    """`?lang=`, else the `lang` cookie, else English only when the browser puts English first; Japanese by default."""
    chosen = request.query_params.get("lang") or request.cookies.get("lang")
    if chosen in TEXT:
        return chosen
    return "en" if _first_language(request.headers.get("accept-language", "")) == "en" else "ja"


def _first_language(header: str) -> str:
    """The primary subtag of the most preferred language in an Accept-Language header."""
    best, best_q = "", 0.0
    for part in header.split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and q > best_q:
            best, best_q = tag.split("-")[0].lower(), q
    return best


# Why a request was refused, by message key: "{name}" fields are filled from the error's parameters.
ERRORS: dict[str, dict[str, str]] = {
    "ja": {
        "sign_in": "ショップの管理画面から Okaeri を開いてください。",
        "not_installed": "このショップには Okaeri がインストールされていません。",
        "unknown_platform": "「{platform}」には対応していません。",
        "form_expired": "フォームの有効期限が切れました。設定画面を読み込み直してください。",
        "unknown_scenario": "「{key}」というシナリオはありません。",
        "no_export": "このデータ開示請求の回答はありません。",
        "enabled_0_1": "enabled は 0 か 1 で指定してください。",
        "setting_refused": "{reason}",
        "no_owner_email": "ショップの連絡先メールアドレスが登録されていないため、テスト送信できません。",
        "mail_refused": "メールサーバーがテストメールを受け付けませんでした。しばらくしてからもう一度お試しください。",
        "weeks_range": "weeks は 1〜104 の範囲で指定してください。",
        "no_hook": "{platform} には「{hook}」という通知の受け口はありません。",
        "too_large": "送信されたデータが大きすぎます(上限 {kib} KiB)。",
        "bad_account": "アカウントIDの形式が正しくありません。",
        "oauth_expired": "インストールの手続きが期限切れになったか、見つかりません。もう一度インストールしてください。",
        "oauth_state": "このブラウザで始めたインストールの手続きと一致しません。もう一度インストールしてください。",
        "oauth_refused": "ショップからの認可が得られませんでした({error})。",
        "oauth_used": "この認可はすでに使われています。もう一度インストールしてください。",
        "install_failed": "{platform} へのインストールに失敗しました。しばらくしてからもう一度お試しください。",
        "no_script": "{platform} にはストアフロント用のスクリプトがありません。",
        "rate_limited": "アクセスが集中しています。{seconds} 秒ほどおいてから、もう一度お試しください。",
        "invalid_event": "ストアフロントのイベントを読み取れませんでした。",
        "unreadable_json": "送信された JSON を読み取れませんでした。",
        "invalid_link": "このリンクは無効です。",
        "template_error": "テンプレートを表示できませんでした。内容をご確認ください。",
        "invalid_signature": "署名を確認できませんでした。",
        "platform_refused": "連携先のサービスがリクエストを受け付けませんでした。",
        "platform_down": "連携先のサービスから正しい応答がありませんでした。しばらくしてからもう一度お試しください。",
        "unknown_shop": "ショップが見つかりません。",
        "validation": "入力内容に誤りがあります({where})。",
        "no_launch": "{platform} のアプリは、ショップの管理画面からではなくインストール用の通知から始まります。",
        "launch_tampered": "このリンクの署名を確認できませんでした。{platform} の管理画面からもう一度アプリを開いてください。",
        "launch_stale": "このリンクは有効期限が切れています。{platform} の管理画面からもう一度アプリを開いてください。",
        "launch_foreign_shop": "ショップのアドレスが {platform} のものではありません。{platform} の管理画面からアプリを開いてください。",
        "launch_scopes": "Okaeri に必要なアクセス権がすべては許可されませんでした。"
                         "もう一度インストールして、すべてのアクセスを許可してください。",
        "session_token": "管理画面のセッションを確認できませんでした。ページを読み込み直してください。",
        "launch_used": "このリンクはすでに使われています。{platform} の管理画面からもう一度アプリを開いてください。",
    },
    "en": {
        "sign_in": "Please open Okaeri from your shop's admin.",
        "not_installed": "Okaeri is not installed in this shop.",
        "unknown_platform": "unknown platform '{platform}'",
        "form_expired": "form expired; reload the settings page",
        "unknown_scenario": "unknown scenario '{key}'",
        "no_export": "there is no answer to this data request",
        "enabled_0_1": "enabled must be 0 or 1",
        "setting_refused": "{reason}",
        "no_owner_email": "the shop has no contact address to send a test to",
        "mail_refused": "the mail server refused the test: {reason}",
        "weeks_range": "weeks must be between 1 and 104",
        "no_hook": "{platform} has no hook '{hook}'",
        "too_large": "body larger than {kib} KiB",
        "bad_account": "{reason}",
        "oauth_expired": "OAuth session expired or missing; start the install again",
        "oauth_state": "OAuth state does not match this browser session",
        "oauth_refused": "authorisation refused: {error} {description}",
        "oauth_used": "this authorisation was already used; start the install again",
        "install_failed": "{platform} install failed: {reason}",
        "no_script": "{platform} has no storefront script",
        "rate_limited": "Too many requests; please try again in about {seconds} seconds.",
        "invalid_event": "invalid event: {reason}",
        "unreadable_json": "{reason}",
        "invalid_link": "This link is not valid.",
        "template_error": "template error: {reason}",
        "invalid_signature": "invalid signature",
        "platform_refused": "{reason}",
        "platform_down": "{reason}",
        "unknown_shop": "{reason}",
        "validation": "{where}: {reason}",
        "no_launch": "{platform} apps start from the install notice, not from an app URL",
        "launch_tampered": "This link's signature does not verify. Open the app again from your {platform} admin.",
        "launch_stale": "This link has expired. Open the app again from your {platform} admin.",
        "launch_foreign_shop": "This is not a {platform} shop address. Open the app from your {platform} admin.",
        "launch_scopes": "Not every permission Okaeri needs was granted ({reason}). Install again and grant them all.",
        "session_token": "The admin session could not be verified ({reason}). Please reload the page.",
        "launch_used": "This link was already used. Open the app again from your {platform} admin.",
    },
}

# Each status's heading and a calm sentence, for answers that carry no message of their own.
STATUS: dict[str, dict[int, tuple[str, str]]] = {
    "ja": {
        400: ("リクエストの内容が正しくありません", "リンクや入力の内容をご確認のうえ、もう一度お試しください。"),
        401: ("ログインが必要です", "ショップの管理画面から Okaeri を開いてください。"),
        403: ("この操作は許可されていません", "ページを読み込み直してから、もう一度お試しください。"),
        404: ("ページが見つかりません", "お探しのページは見つかりませんでした。URL をご確認ください。"),
        405: ("この操作には対応していません", "このページはその方法では利用できません。"),
        409: ("ただいま準備中です", "しばらくしてからもう一度お試しください。"),
        413: ("データが大きすぎます", "送信できる大きさを超えています。"),
        422: ("入力内容をご確認ください", "入力された内容に誤りがあります。確認してもう一度お試しください。"),
        429: ("アクセスが集中しています", "しばらくしてからもう一度お試しください。"),
        500: ("問題が発生しました",
              "申し訳ありません。サーバーで問題が発生しました。問題は記録されています。時間をおいてもう一度お試しください。"),
        502: ("連携先から応答がありません", "連携先のサービスから正しい応答がありませんでした。しばらくしてからもう一度お試しください。"),
    },
    "en": {
        400: ("Bad request", "Please check the link or what you entered and try again."),
        401: ("Please sign in", "Please open Okaeri from your shop's admin."),
        403: ("Not allowed", "Please reload the page and try again."),
        404: ("Page not found", "There is no page at this address. Please check the URL."),
        405: ("Not supported", "This page cannot be used that way."),
        409: ("Not ready yet", "Please try again in a little while."),
        413: ("Too large", "What was sent is larger than allowed."),
        422: ("Please check your entry", "Something you entered cannot be used. Please check it and try again."),
        429: ("Too many requests", "Please try again in a little while."),
        500: ("Something went wrong", "Sorry, something went wrong on our side; it has been logged. Please try again later."),
        502: ("A service did not answer", "A service Okaeri relies on did not answer properly. Please try again later."),
    },
}


def error_text(lang: str, key: str, params: dict[str, str]) -> str | None:
    """The message `key` in `lang` with its fields filled; None when the key is unknown."""
    template = ERRORS.get(lang, ERRORS["ja"]).get(key)
    return template.format_map(_Blank(params)).strip() if template is not None else None


def status_text(lang: str, status: int) -> tuple[str, str]:
    """The heading and sentence for an HTTP status (its class's, for a status without its own)."""
    table = STATUS.get(lang, STATUS["ja"])
    return table.get(status) or table[500 if status >= 500 else 400]


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""
