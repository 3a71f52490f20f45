"""What the settings page says about an install that is not active: why, and how to resume."""
from __future__ import annotations

__all__ = ["install_texts"]

_TEXTS: dict[str, dict[str, str]] = {
    "ja": {
        "title": "Okaeri は停止しています",
        "authorising": "インストールの途中で、{platform} でのアクセス許可がまだ済んでいません。"
                       "許可を完了すると、データの同期と配信を始めます。",
        "token_refused": "{platform} が Okaeri のアクセス権を受け付けなくなりました"
                         "（{platform} の管理画面でアプリの許可が取り消されたか、アプリが削除されました）。",
        "uninstalled": "{platform} から Okaeri がアンインストールされました（{when}）。",
        "unpaid": "アプリ利用料のお支払いが確認できなかったため、{platform} が Okaeri をアンインストールしました（{when}）。",
        "stopped": "配信はすべて止まり、送信待ちだったメッセージは送りません。保存していたアクセス権は削除しました。",
        "resume_authorise": "下のボタンから {platform} でアクセスを許可すると、設定はそのままで再開します。",
        "resume_reinstall": "もう一度使うには、{platform} のアプリストアから Okaeri をインストールしてください。"
                            "これまでの設定はそのまま引き継がれます。",
        "resume_if_removed": "アプリを削除した場合は、{platform} のアプリストアから Okaeri をインストールし直してください。"
                             "これまでの設定はそのまま引き継がれます。",
        "authorise_button": "{platform} でアクセスを許可する",
        "app_store": "{platform} アプリストアを開く",
        "details": "{platform} の応答",
        "storefront": "ストアフロントの計測",
        "storefront_help": "ショップのページと購入完了ページに Okaeri のスクリプトを入れ、閲覧・かご・購入を記録します"
                           "（カゴ落ちリマインドと閲覧リターゲティング、購入の計測に使います）。止めるとスクリプトをショップから外します。",
        "storefront_off": "スクリプトを外して計測を止める", "storefront_on": "スクリプトを入れて計測する",
    },
    "en": {
        "title": "Okaeri is stopped",
        "authorising": "The install stopped before access was granted in {platform}. Grant it to start syncing and sending.",
        "token_refused": "{platform} no longer accepts Okaeri's access (the app's permission was withdrawn in "
                         "{platform}'s admin, or the app was removed).",
        "uninstalled": "Okaeri was uninstalled from {platform} ({when}).",
        "unpaid": "{platform} uninstalled Okaeri because the app's fee was not paid ({when}).",
        "stopped": "All sending has stopped and messages that were waiting will not be sent. The stored access token was deleted.",
        "resume_authorise": "Grant access in {platform} with the button below to resume, with your settings as they were.",
        "resume_reinstall": "To use Okaeri again, install it from the {platform} app store; your settings carry over.",
        "resume_if_removed": "If you removed the app, install Okaeri again from the {platform} app store; your settings carry over.",
        "authorise_button": "Grant access in {platform}",
        "app_store": "Open the {platform} app store",
        "details": "{platform} answered",
        "storefront": "Storefront tracking",
        "storefront_help": "Okaeri's script on the shop's pages and thanks page records views, baskets and purchases "
                           "(for cart recovery, browse retargeting and conversions). Switching it off removes the script from the shop.",
        "storefront_off": "Remove the script and stop tracking", "storefront_on": "Add the script and track",
    },
}


def install_texts(lang: str) -> dict[str, str]:
    """The install-state texts in `lang` (Japanese unless English)."""
    return _TEXTS["en" if lang == "en" else "ja"]
