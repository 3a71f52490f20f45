"""The dashboard's words in Japanese (default) and English: headings, figures, held-back reasons."""
from __future__ import annotations

__all__ = ["DASHBOARD_TEXT", "dashboard_texts"]

DASHBOARD_TEXT: dict[str, dict[str, str]] = {
    "ja": {
        "title": "ダッシュボード", "period": "期間", "last_7": "直近7日", "last_30": "直近30日", "last_90": "直近90日",
        "custom": "期間を指定", "from": "開始日", "to": "終了日", "show": "表示", "by": "グラフの単位",
        "by_day": "日別", "by_week": "週別", "csv": "CSVをダウンロード", "total": "合計", "scenario": "シナリオ",
        "sent": "送信",
        "nps": "NPS(アンケート)", "nps_answers": "{n} 件の回答", "nps_none": "回答はまだありません",
        "held_back": "保留・除外", "opened": "開封", "clicked": "クリック", "conversions": "コンバージョン",
        "revenue": "売上(貢献)", "lift": "ホールドアウト効果(購入率の差)", "interval": "95%信頼区間",
        "not_enough": "まだ十分なデータがありません",
        "not_enough_help": "比較用(非配信)グループと配信グループがそれぞれ{min_arm}通以上になり、95%信頼区間の幅が"
                           "{max_points}ポイント以下になると、効果を表示します。",
        "lift_help": "配信したお客様と、効果測定のため配信しなかったお客様(比較用グループ)の、{days}日以内の購入率の差です。",
        "treated": "配信", "control": "比較用", "period_label": "{first} 〜 {last}({tz})",
        "chart_messages": "送信・開封・クリック", "chart_revenue": "売上(貢献)とコンバージョン", "chart_held": "保留・除外",
        "date": "日付", "week_of": "週(月曜日)", "held_by_reason": "保留・除外の内訳", "reason": "理由", "count": "件数",
        "empty": "この期間にはまだメッセージがありません。設定画面で定番シナリオをONにすると、送信や効果がここに表示されます。",
        "open_settings": "設定画面を開く", "rate": "率", "points": "ポイント",
        "yen": "円",
    },
    "en": {
        "title": "Dashboard", "period": "Period", "last_7": "Last 7 days", "last_30": "Last 30 days",
        "last_90": "Last 90 days", "custom": "Custom", "from": "From", "to": "To", "show": "Show", "by": "Chart by",
        "by_day": "Day", "by_week": "Week", "csv": "Download CSV", "total": "Total", "scenario": "Scenario",
        "sent": "Sent",
        "nps": "NPS (surveys)", "nps_answers": "{n} answers", "nps_none": "no answers yet",
        "held_back": "Held back", "opened": "Opened", "clicked": "Clicked", "conversions": "Conversions",
        "revenue": "Attributed revenue", "lift": "Holdout lift (purchase rate)", "interval": "95% interval",
        "not_enough": "Not enough data yet",
        "not_enough_help": "The lift is shown once the control group and the sent group each have {min_arm} messages "
                           "and the 95% interval is at most {max_points} points wide.",
        "lift_help": "The difference in purchase rate within {days} days between customers who got the message and "
                     "customers held out to measure it (the control group).",
        "treated": "Sent", "control": "Control", "period_label": "{first} to {last} ({tz})",
        "chart_messages": "Sent, opened, clicked", "chart_revenue": "Attributed revenue and conversions",
        "chart_held": "Held back", "date": "Date", "week_of": "Week of (Monday)", "held_by_reason": "Held back, by reason",
        "reason": "Reason", "count": "Count",
        "empty": "No messages in this period yet. Turn on the standard scenarios on the settings page and what they "
                 "send and earn appears here.",
        "open_settings": "Open settings", "rate": "rate", "points": "points",
        "yen": "JPY",
    },
}

REASON_TEXT: dict[str, dict[str, str]] = {
    "ja": {"control": "比較用グループ(効果測定のため送らない)", "suppressed": "配信停止・同意なし",
           "capped": "頻度上限で延期中", "quiet_hours": "深夜帯のため朝まで待機", "deferred": "配信時に延期(深夜帯・頻度上限)",
           "waiting": "送信予定(待ち時間中)", "out_of_stock": "在庫切れで中止", "exit": "購入済みなどで不要になり中止",
           "switched_off": "シナリオ停止・アンインストールで中止", "failed": "送信失敗"},
    "en": {"control": "Control group (held out to measure)", "suppressed": "Unsubscribed or no consent",
           "capped": "Waiting for the frequency cap", "quiet_hours": "Waiting for the end of quiet hours",
           "deferred": "Deferred at delivery (quiet hours or cap)", "waiting": "Scheduled (delay not over)",
           "out_of_stock": "Cancelled: out of stock", "exit": "Cancelled: no longer needed (e.g. ordered)",
           "switched_off": "Cancelled: scenario off or app uninstalled", "failed": "Failed"},
}


def dashboard_texts(lang: str) -> dict[str, str]:
    """The dashboard's words in `lang`, held-back reasons under `reason.<key>`."""
    chosen = "en" if lang == "en" else "ja"
    return {**DASHBOARD_TEXT[chosen], **{f"reason.{k}": v for k, v in REASON_TEXT[chosen].items()}}
