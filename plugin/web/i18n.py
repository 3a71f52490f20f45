"""Page text in Japanese (default) and English."""
from __future__ import annotations

__all__ = ["TEXT", "texts"]

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
        "cap_help": "The most scenario messages one customer receives; the lower-priority ones wait.",
    },
}


def texts(lang: str) -> dict[str, str]:
    return TEXT.get(lang, TEXT["ja"])
