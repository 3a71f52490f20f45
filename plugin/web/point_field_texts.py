"""Texts of the point-fields section of the settings page and of the data-request pages, Japanese and English."""
from __future__ import annotations

__all__ = ["POINT_FIELD_TEXT", "point_field_texts"]

POINT_FIELD_TEXT: dict[str, dict[str, str]] = {
    "ja": {
        "points": "ポイントのデータ",
        "points_help": "このプラットフォームにはポイント機能がありません。ポイント残高を保存している顧客メタフィールドを"
                       " namespace.key の形(例: loyalty.points)で指定すると、同期で読み込み、ポイントのシナリオが使えるようになります。",
        "balance_field": "残高のメタフィールド", "expiry_field": "有効期限のメタフィールド(任意)",
        "expiry_help": "有効期限がない場合は、最後の注文から配信ルールの月数で失効するとみなします。",
        "save": "保存", "unset": "未設定: ポイントのシナリオは使えません",
        "set": "同期で {field} から読み込みます",
        "data_requests": "お客様のデータ開示請求",
        "data_requests_help": "プラットフォーム経由でお客様から届いたデータ開示請求への回答(JSON)をダウンロードできます。",
        "no_requests": "データ開示請求はまだありません。", "requested_at": "受付日時", "customer": "お客様ID",
        "request": "請求ID", "download": "JSONをダウンロード", "holds_nothing": "保存データなし", "downloaded": "ダウンロード済み",
    },
    "en": {
        "points": "Point data",
        "points_help": "This platform has no points of its own. Name the customer metafield that holds the point balance as"
                       " namespace.key (e.g. loyalty.points): sync reads it and the point scenarios become available.",
        "balance_field": "Balance metafield", "expiry_field": "Expiry date metafield (optional)",
        "expiry_help": "Without an expiry date, points expire the shop rule's number of months after the last order.",
        "save": "Save", "unset": "Not set: the point scenarios are unavailable",
        "set": "Sync reads {field}",
        "data_requests": "Customer data requests",
        "data_requests_help": "Download the answer (JSON) to each data request a customer sent through the platform.",
        "no_requests": "No data requests yet.", "requested_at": "Received", "customer": "Customer id",
        "request": "Request id", "download": "Download JSON", "holds_nothing": "no data held", "downloaded": "downloaded",
    },
}


def point_field_texts(lang: str) -> dict[str, str]:
    return POINT_FIELD_TEXT.get(lang, POINT_FIELD_TEXT["ja"])
