"""The scenario page's words in Japanese (default) and English (kept apart from plugin.web.i18n)."""
from __future__ import annotations

__all__ = ["SCENARIO_TEXT", "scenario_texts"]

SCENARIO_TEXT: dict[str, dict[str, str]] = {
    "ja": {
        "back": "設定に戻る", "settings_h": "このシナリオの設定", "default": "既定", "minutes": "分",
        "default_copy": "空欄なら既定の文面", "saved": "設定を保存しました。次回の配信から反映されます。",
        "steps_h": "ステップ別の成果", "step": "ステップ", "sent": "送信", "opened": "開封", "clicked": "クリック",
        "conversions": "購入", "revenue": "売上",
        "steps_empty": "まだ送信したメッセージはありません。シナリオをONにすると、ここに成果が表示されます。",
        "queue_h": "送信待ち", "queue_count": "{n} 件が送信を待っています。", "due": "送信予定", "customer": "お客様",
        "reason": "待っている理由", "queue_empty": "送信待ちのメッセージはありません。",
        "older": "前のページ", "newer": "次のページ", "page": "{page} / {pages} ページ",
        "recent_h": "最近の送信", "sent_at": "送信日時", "yes": "あり", "no": "—",
        "recent_empty": "まだ送信したメッセージはありません。",
        "preview_h": "プレビューとテスト送信",
        "search_help": "お客様の名前・メールアドレス・ID で検索して、そのお客様に届く内容を確認できます。",
        "search": "検索", "search_placeholder": "名前・メール・ID",
        "found_none": "「{q}」に一致するお客様はいません(メールアドレスのあるお客様が対象です)。",
        "preview_of": "{name} 様(ID {id})へのメール", "subject": "件名", "choose": "このお客様でプレビュー",
        "preview_default": "お客様を選ばない場合は、最近ご注文のあったお客様でプレビューします。",
        "open_preview": "別のタブで開く", "test_send": "この内容を自分宛てにテスト送信",
        "test_to": "送信先: {email}(ショップの連絡先)",
        "test_sent": "テストメールを {email} 宛てに送信しました({name} 様への内容、件名「{subject}」)。",
        "test_sent_short": "テストメールを {email} 宛てに送信しました。",
        "no_owner_email": "ショップの連絡先メールアドレスが登録されていないため、テスト送信できません。",
        "mail_refused": "メールサーバーがテストメールを受け付けませんでした。しばらくしてからもう一度お試しください。",
        "delay_help": "きっかけ(注文・カゴ放置など)からこの時間が経ってから送ります。"
                      "待ち時間に達していないお客様は、まだ送信待ちに入りません。",
        "holdout_help": "効果を測るため、この割合のお客様には送らずに比べます。",
        "unknown_customer": "このショップに ID {id} のお客様はいません。",
        "recommender_h": "おすすめの選び方",
    },
    "en": {
        "back": "Back to settings", "settings_h": "This scenario's settings", "default": "default", "minutes": "min",
        "default_copy": "empty: the default copy", "saved": "Settings saved. They apply from the next send.",
        "steps_h": "Results by step", "step": "Step", "sent": "Sent", "opened": "Opened", "clicked": "Clicked",
        "conversions": "Orders", "revenue": "Revenue", "steps_empty": "Nothing sent yet. Turn the scenario on and its results appear here.",
        "queue_h": "Waiting to be sent", "queue_count": "{n} messages are waiting.", "due": "Due", "customer": "Customer",
        "reason": "Why it waits", "queue_empty": "No message is waiting.",
        "older": "Previous page", "newer": "Next page", "page": "page {page} of {pages}",
        "recent_h": "Recent sends", "sent_at": "Sent at", "yes": "yes", "no": "—",
        "recent_empty": "Nothing sent yet.",
        "preview_h": "Preview and test send",
        "search_help": "Search a customer by name, email or id to see what they would receive.",
        "search": "Search", "search_placeholder": "name, email or id",
        "found_none": "No customer matches “{q}” (customers with an email address only).",
        "preview_of": "Mail to {name} (id {id})", "subject": "Subject", "choose": "Preview for this customer",
        "preview_default": "With no customer chosen, the preview uses a customer who ordered recently.",
        "open_preview": "Open in a new tab", "test_send": "Send this to me as a test",
        "test_to": "To: {email} (the shop's contact)",
        "test_sent": "Test mail sent to {email} (the mail to {name}, subject “{subject}”).",
        "test_sent_short": "Test mail sent to {email}.",
        "no_owner_email": "The shop has no contact address, so no test can be sent.",
        "mail_refused": "The mail server did not accept the test mail. Please try again in a little while.",
        "delay_help": "Sent this long after the trigger (an order, a cart left…). Customers not yet past it are not in the queue yet.",
        "holdout_help": "This share of customers is not sent to, to measure the effect.",
        "unknown_customer": "The shop has no customer with id {id}.",
        "recommender_h": "How recommendations are chosen",
    },
}


def scenario_texts(lang: str) -> dict[str, str]:
    return SCENARIO_TEXT.get(lang, SCENARIO_TEXT["ja"])
