"""The words of the shop rules page (/app/rules), in Japanese and English."""
# ruff: noqa: E501 (sentences read better unwrapped)
from __future__ import annotations

__all__ = ["rules_texts", "DONE"]

_JA = {
    "title": "ショップのルール",
    "intro": "すべてのシナリオに共通するルールです。変更はすぐに次の配信から使われます。",
    "sending": "配信のルール",
    "quiet_hours": "配信しない時間帯", "quiet_to": "時 〜", "hour": "時",
    "quiet_help": "この時間帯に届くはずのメッセージは、終了時刻まで待ってから送ります(開始と終了が同じなら制限なし)。時刻はショップのタイムゾーン({tz})です。",
    "cap": "頻度上限", "cap_window": "時間に", "cap_count": "通まで",
    "cap_help": "1人のお客様に送るシナリオメッセージの上限です。上限を超えた分は優先度の低いものから延期します。",
    "sender": "差出人と効果測定",
    "sender_name": "差出人名", "sender_help": "メールの「差出人」に表示される名前です。空欄ならショップ名「{shop}」を使います。",
    "holdout": "効果測定用に配信しない割合の初期値", "percent": "%",
    "holdout_help": "「定番シナリオ」のスイッチで新しく設定するシナリオに使います(0〜50%)。設定済みのシナリオの割合は、各シナリオの設定で変えられます。",
    "groups": "商品のまとめ方(商品コードのグループ)",
    "groups_help": "サンプル・本品・定期便・セットなど、商品コード(型番)の違う同じ商品を1つの商品グループとして扱います。"
                   "「*」は任意の文字列に一致します(例: TEA-*)。ルールは上から順に試し、最初に一致したルールが使われます。",
    "groups_effect": "購入後ステップ配信への影響: ステップは商品グループごとに進みます。お客様がそのグループの商品を過去12か月に買っていなければ、"
                     "その購入からステップ(お礼・アンケート・30/90/240/365日後)が始まります。12か月以内に同じグループの商品をまた買っても"
                     "ステップは最初からやり直さず、最初の購入の予定どおりに続きます(サンプルの後に本品を買っても、お礼とアンケートは重なりません)。"
                     "メールには、そのグループでお客様が最後に買った商品を表示します。分析(NPSなど)も商品グループごとに集計します。",
    "split_help": "「分ける」は、同じ商品コードを持つ商品を1つずつ別のグループにします(例: 型番が同じでも容量違いの商品)。",
    "codes": "商品コード(1行に1つ、*が使えます)", "action": "まとめ方", "merge": "1つのグループにまとめる", "split": "商品ごとに分ける",
    "group_name": "グループ名", "add_rule": "ルールを追加", "preview": "一致する商品を見る", "remove": "削除",
    "no_rules": "まだルールはありません。サンプルと本品のように同じ商品の商品コードを下のフォームで1つにまとめると、購入後ステップ配信と分析がその商品グループで動きます。",
    "matched": "このルールで決まる商品: {n}件", "matched_draft": "このルールに一致する商品: {n}件(まだ保存していません)",
    "first_rows": "(先頭{n}件を表示)", "no_match": "一致する商品はありません。商品コード(型番)を確かめてください。",
    "code": "商品コード", "name": "商品名", "platform_group": "元のグループ", "new_group": "新しいグループ",
    "rule": "ルール", "added": "追加日時",
    "points": "ポイントの有効期限",
    "points_months": "最終購入日から", "months": "か月で失効",
    "points_help": "{platform}のデータにはポイントの有効期限がないため、お客様の最終購入日からこの月数で失効するものとして計算します(初期値12か月)。"
                   "ショップの実際の設定と合わせてください。",
    "points_where": "使われる場所: 「ポイント有効期限のお知らせ」(失効30日前と7日前)、「ポイント明細」の有効期限、顧客ページのポイント欄。"
                    "保存すると全顧客の有効期限をすぐに計算し直します。",
    "points_native": "{platform}のデータには有効期限があるため、その日付をそのまま使います。ここで設定するものはありません。",
    "save": "保存", "settings": "設定に戻る",
}
_EN = {
    "title": "Shop rules",
    "intro": "Rules every scenario follows. A change applies from the next send.",
    "sending": "Sending rules",
    "quiet_hours": "Quiet hours", "quiet_to": ":00 to", "hour": ":00",
    "quiet_help": "Messages due in these hours wait until they end (the same start and end: no quiet hours). Hours are in the shop's time zone ({tz}).",
    "cap": "Frequency cap", "cap_window": "hours:", "cap_count": "messages at most",
    "cap_help": "The most scenario messages one customer receives; the lower-priority ones wait.",
    "sender": "Sender and measurement",
    "sender_name": "Sender name", "sender_help": "The name shown as the mail's sender. Empty: the shop's name, \"{shop}\".",
    "holdout": "Default holdout share", "percent": "%",
    "holdout_help": "Given to each scenario the standard-scenarios switch sets up from now on (0-50%). Scenarios already set keep theirs; change it on each scenario.",
    "groups": "Product grouping (product codes)",
    "groups_help": "Treat the codes of one product — a sample, the regular item, a subscription, a set — as one product group. "
                   "'*' matches any characters (e.g. TEA-*). Rules are tried from the top; the first that matches wins.",
    "groups_effect": "Effect on the post-purchase steps: steps run per product group. A purchase from a group the customer had not bought "
                     "in the 12 months before starts the steps (thanks, survey, 30/90/240/365 days). Buying from the same group again within "
                     "12 months does not restart them; they continue on the first purchase's schedule (a sample then the regular item gets "
                     "one thanks and one survey). Mails show the product the customer bought last in the group. Analysis (NPS and others) "
                     "counts per product group too.",
    "split_help": "'Split' makes each product sharing a code a group of its own (e.g. sizes that share one model number).",
    "codes": "Product codes (one per line, * allowed)", "action": "How", "merge": "Merge into one group", "split": "Split by product",
    "group_name": "Group name", "add_rule": "Add rule", "preview": "See matching products", "remove": "Remove",
    "no_rules": "No rules yet. Merge the codes of one product (a sample and the regular item, say) below, and the post-purchase steps and the analysis follow that product group.",
    "matched": "Products this rule decides: {n}", "matched_draft": "Products this rule matches: {n} (not saved yet)",
    "first_rows": "(first {n} shown)", "no_match": "No product matches. Check the product codes (model numbers).",
    "code": "Code", "name": "Product", "platform_group": "Platform's group", "new_group": "New group",
    "rule": "Rule", "added": "Added",
    "points": "Point expiry",
    "points_months": "Points expire", "months": "months after the last order",
    "points_help": "{platform}'s data has no point expiry dates, so points are taken to expire this many months after the customer's last order (default 12). Match your shop's own setting.",
    "points_where": "Used by: the points expiry notice (30 and 7 days before), the monthly points statement's expiry date, and the customer page. "
                    "Saving recomputes every customer's expiry at once.",
    "points_native": "{platform}'s data carries expiry dates; they are used as they are. Nothing to set here.",
    "save": "Save", "settings": "Back to settings",
}
DONE = {  # what a form did, said after its redirect
    "rules": ("配信しない時間帯と頻度上限を保存しました。", "Saved the quiet hours and the frequency cap."),
    "sending": ("差出人名と効果測定の初期値を保存しました。", "Saved the sender name and the default holdout share."),
    "points": ("ポイントの有効期限を保存し、全顧客の有効期限を計算し直しました。", "Saved the point expiry and recomputed every customer's expiry."),
    "group_added": ("商品のまとめ方のルールを追加し、商品グループを更新しました。", "Added the grouping rule and regrouped the products."),
    "group_removed": ("ルールを削除し、商品グループを元に戻しました。", "Removed the rule and regrouped the products."),
    "group_missing": ("そのルールはすでにありません。", "That rule no longer exists."),
}


def rules_texts(lang: str) -> dict[str, str]:
    """The page's words in `lang` (Japanese unless English is asked for)."""
    return _EN if lang == "en" else _JA
