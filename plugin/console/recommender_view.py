"""What the recommendation scenario's page says of the recommender: which model serves the
shop's recommendations and why (a cold start says so, with the order count that ends it)."""
from __future__ import annotations

from sqlmodel import Session

from plugin.clock import as_utc
from plugin.storage.models import Shop
from recommender.serving import status

__all__ = ["MODEL_NAMES", "recommender_line"]

MODEL_NAMES: dict[str, tuple[str, str]] = {  # (ja, en)
    "popularity": ("人気順", "bestsellers"),
    "category_popularity": ("カテゴリ別の人気順", "bestsellers of the customer's categories"),
    "item_knn": ("一緒に買われる商品", "bought together (item-kNN)"),
    "ease": ("購入パターン(EASE)", "purchase patterns (EASE)"),
    "blend": ("一緒に買われる商品と人気順の組み合わせ", "bought together + bestsellers"),
    "recent_ease": ("最近の購入パターン(EASE・時間減衰)", "recent purchase patterns (time-decayed EASE)"),
    "tifu_knn": ("似たお客様の最近の購入(TIFU-KNN)", "what similar customers bought lately (TIFU-KNN)"),
    "sequential": ("最近の購入パターンと次に買われる商品", "recent patterns + what is bought next"),
}

TEXT = {
    "ja": {
        "none": "まだおすすめを学習していません。注文が同期されると毎晩学習します。",
        "cold": "ご注文がまだ {orders} 件と少ないため、お客様がよく買うカテゴリの人気商品をおすすめしています"
                "(購入履歴からの学習は {min} 件から)。注文が増えると、毎晩の学習で自動的に切り替わります。",
        "model": "購入履歴から選んだ「{model}」でおすすめしています(検証での recall@10 {recall:.1%}、"
                 "お客様 {customers} 人・商品 {items} 点、{trained} 学習)。",
    },
    "en": {
        "none": "Recommendations are not trained yet. They are trained every night once orders are synced.",
        "cold": "With only {orders} orders so far, customers get the bestsellers of the categories they buy from "
                "(models learn from purchase history from {min} orders). The nightly training switches over by itself "
                "as orders grow.",
        "model": "Recommendations come from \"{model}\", chosen on this shop's purchase history (validation "
                 "recall@10 {recall:.1%}; {customers} customers, {items} products; trained {trained}).",
    },
}


def recommender_line(session: Session, shop: Shop, lang: str) -> dict[str, str]:
    """{"model": the served model's key ("" before training), "cold_start": "1" or "", "text": a sentence}."""
    words = TEXT["en" if lang == "en" else "ja"]
    found = status(session, shop)
    if found is None:
        return {"model": "", "cold_start": "", "text": words["none"]}
    if found.cold_start:
        return {"model": found.model, "cold_start": "1",
                "text": words["cold"].format(orders=found.orders, min=found.min_orders)}
    name = MODEL_NAMES.get(found.model, (found.model, found.model))[1 if lang == "en" else 0]
    trained = as_utc(found.trained_at).strftime("%Y-%m-%d %H:%M UTC")
    return {"model": found.model, "cold_start": "",
            "text": words["model"].format(model=name, recall=found.validation_recall, customers=found.customers,
                                          items=found.items, trained=trained)}
