"""Texts of the survey pages, Japanese and English: the customer's answer pages (in the shop's
language) and the merchant's /app/surveys (in the merchant's)."""
from __future__ import annotations

__all__ = ["SURVEY_TEXT", "survey_texts"]

SURVEY_TEXT: dict[str, dict[str, str]] = {
    "ja": {
        "answer_title": "アンケートへのご回答", "thanks": "ご回答ありがとうございました。",
        "your_score": "あなたの回答: {score}",
        "already": "このアンケートにはすでに {score} とご回答いただいています。変更する場合は下のフォームから送信してください。",
        "question": "このショップを友人や知人にすすめる可能性は、どのくらいありますか？",
        "comment_label": "よろしければ、理由やご感想をお聞かせください(任意)", "send": "送信する",
        "comment_help": "数字を選び直すこともできます。送信すると回答が確定します。",
        "done": "ご回答を受け付けました。貴重なご意見をありがとうございます。", "done_score": "回答: {score}",
        "invalid": "このリンクは無効です。メールのボタンをもう一度押してください。",
        "invalid_score": "0 から 10 までの数字を選んでください。",
        "too_long": "コメントは {limit} 文字以内でお願いします。",
        "preview": "これはプレビュー・テスト送信用のリンクです。回答は記録されていません。",
        "low": "0 = まったくない", "high": "10 = 非常に高い",
        # the merchant's page
        "surveys": "アンケートとNPS", "nps": "NPS", "answers": "回答数", "promoters": "推奨者(9〜10)",
        "passives": "中立者(7〜8)", "detractors": "批判者(0〜6)", "nps_help": "NPS = 推奨者の割合 − 批判者の割合(−100〜+100)。",
        "over_time": "NPSの推移", "by_month": "月別", "by_week": "週別", "period": "期間", "week_of": "{day} の週",
        "by_group": "商品グループ別", "group": "商品グループ", "comments": "コメント", "date": "日時", "score": "スコア",
        "customer": "顧客", "comment": "コメント", "newer": "← 新しいコメント", "older": "古いコメント →",
        "page_of": "{page} / {pages} ページ(全 {total} 件)", "csv": "CSVでダウンロード(全回答)",
        "empty": "まだ回答がありません。購入後ステップ配信をONにすると、注文の7日後に届くアンケートメールで回答が集まります。",
        "no_comments": "この期間のコメントはまだありません。", "window_month": "直近12か月", "window_week": "直近12週",
        "not_enough": "回答が {n} 件だけなので、NPSはまだ大きく変わりえます(目安: 30件以上)。",
        "promoter": "推奨者", "passive": "中立者", "detractor": "批判者",
        "csv_at": "回答日時", "csv_customer_id": "顧客ID", "csv_email": "メールアドレス", "csv_order": "注文番号",
        "csv_category": "区分", "csv_groups": "商品グループ", "csv_confirmed": "確定",
        "yes": "はい", "no": "いいえ",
    },
    "en": {
        "answer_title": "Your answer", "thanks": "Thank you for your answer.",
        "your_score": "Your answer: {score}",
        "already": "You already answered {score}. To change it, send the form below.",
        "question": "How likely are you to recommend us to a friend or colleague?",
        "comment_label": "Tell us why, if you like (optional)", "send": "Send",
        "comment_help": "You can pick another number too. Sending makes your answer final.",
        "done": "Your answer is recorded. Thank you for your feedback.", "done_score": "Answer: {score}",
        "invalid": "This link is not valid. Please press the button in the email again.",
        "invalid_score": "Please pick a number from 0 to 10.",
        "too_long": "Please keep the comment under {limit} characters.",
        "preview": "This link belongs to a preview or test message: no answer was recorded.",
        "low": "0 = not at all likely", "high": "10 = extremely likely",
        "surveys": "Surveys and NPS", "nps": "NPS", "answers": "Answers", "promoters": "Promoters (9–10)",
        "passives": "Passives (7–8)", "detractors": "Detractors (0–6)",
        "nps_help": "NPS = % promoters − % detractors (−100 to +100).",
        "over_time": "NPS over time", "by_month": "Monthly", "by_week": "Weekly", "period": "Period", "week_of": "week of {day}",
        "by_group": "By product group", "group": "Product group", "comments": "Comments", "date": "Date", "score": "Score",
        "customer": "Customer", "comment": "Comment", "newer": "← Newer comments", "older": "Older comments →",
        "page_of": "Page {page} of {pages} ({total} in all)", "csv": "Download CSV (all answers)",
        "empty": "No answers yet. Turn on the post-purchase steps: the survey mail 7 days after an order collects them.",
        "no_comments": "No comments in this period yet.", "window_month": "Last 12 months", "window_week": "Last 12 weeks",
        "not_enough": "Only {n} answers so far: the NPS can still move a lot (30 or more make it steadier).",
        "promoter": "Promoter", "passive": "Passive", "detractor": "Detractor",
        "csv_at": "Answered at", "csv_customer_id": "Customer ID", "csv_email": "Email", "csv_order": "Order",
        "csv_category": "Category", "csv_groups": "Product groups", "csv_confirmed": "Confirmed",
        "yes": "yes", "no": "no",
    },
}


def survey_texts(lang: str) -> dict[str, str]:
    """The survey texts in `lang` (Japanese unless English)."""
    return SURVEY_TEXT["en" if lang == "en" else "ja"]
