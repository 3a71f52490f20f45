"""A realistic generated shop: customers, products, a year of orders with repeat buyers."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

__all__ = ["SandboxData", "generate", "image_path"]

FAMILY = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤",
          "吉田", "山田", "佐々木", "山口", "松本", "井上", "木村", "林", "清水", "斎藤"]
GIVEN = ["陽菜", "結衣", "美咲", "さくら", "葵", "花子", "蓮", "大翔", "悠真", "太郎",
         "健太", "翔", "直子", "由美", "恵", "誠", "拓也", "彩", "真理子", "優"]
CATEGORIES = {
    1: ("コーヒー豆", ["ブラジル", "エチオピア", "コロンビア", "グアテマラ", "深煎りブレンド", "浅煎りブレンド"], (980, 2400), True),
    2: ("日本茶・紅茶", ["煎茶", "ほうじ茶", "玄米茶", "ダージリン", "アールグレイ", "和紅茶"], (680, 1800), True),
    3: ("焼き菓子", ["フィナンシェ", "マドレーヌ", "クッキー缶", "バウムクーヘン", "ガレット"], (450, 3200), True),
    4: ("器・食器", ["マグカップ", "豆皿", "飯碗", "湯呑み", "ガラスコップ", "平皿"], (1200, 5800), False),
    5: ("キッチン雑貨", ["ドリッパー", "ケトル", "キャニスター", "茶こし", "木のスプーン"], (800, 7800), False),
    6: ("ギフト", ["コーヒーギフト", "お茶ギフト", "焼き菓子ギフト", "季節のギフト"], (2500, 6800), False),
}
STYLES = ["定番", "季節限定", "有機", "職人の", "小さな", "大きな", "白い", "藍色の", "北欧風", "手作り"]


@dataclass
class SandboxData:
    """Everything the fake platform serves; records are shaped like ColorMe's JSON."""

    shop: dict[str, Any]
    categories: list[dict[str, Any]]
    products: list[dict[str, Any]]
    customers: list[dict[str, Any]]
    sales: list[dict[str, Any]]
    script_tags: list[dict[str, Any]] = field(default_factory=list)
    guests: list[dict[str, Any]] = field(default_factory=list)  # buyers without an account (only in their sales)
    deleted_products: list[dict[str, Any]] = field(default_factory=list)  # gone from the shop, still in old sales


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


def generate(seed: int, now: datetime, store_url: str, *, customers: int = 600, products: int = 240,
             guests: int | None = None, deleted: int | None = None) -> SandboxData:
    """Build the shop; the same seed and `now` always give the same shop.

    Besides members it has guests (one in twenty buyers by default: no account, `member: false`,
    known only from their sales) and a few products deleted after they sold (one in fifty): gone
    from the lists, still in their sales.
    """
    rng = random.Random(seed)
    shop = _shop(store_url, now)
    cats = [{"id_big": k, "id_small": 0, "name": v[0], "children": []} for k, v in CATEGORIES.items()]
    prods = [_product(rng, i, now, store_url) for i in range(1, products + 1)]
    seen: dict[str, int] = {}
    for p in prods:  # a shop does not list two products under one name
        seen[p["name"]] = seen.get(p["name"], 0) + 1
        if seen[p["name"]] > 1:
            p["name"] = f"{p['name']} No.{seen[p['name']]}"
    custs = [_customer(rng, i, now) for i in range(1, customers + 1)]
    sales = _sales(rng, custs, prods, now)
    extra = random.Random(seed * 7919 + 1)  # its own stream: members, products and their sales stay as they were
    buyers = [_guest(extra, i, now) for i in range(1, (customers // 20 if guests is None else guests) + 1)]
    _guest_sales(extra, buyers, prods, sales, now)
    sold = {d["product_id"] for sale in sales for d in sale["details"]}
    candidates = [p for p in prods if p["id"] in sold]
    gone = extra.sample(candidates, min(len(candidates), products // 50 if deleted is None else deleted))
    return SandboxData(shop=shop, categories=cats, products=[p for p in prods if p not in gone], customers=custs,
                       sales=sales, guests=buyers, deleted_products=gone)


def _shop(store_url: str, now: datetime) -> dict[str, Any]:
    return {
        "id": "PA00000001", "state": "enabled", "url": store_url, "login_id": "okaeri-sandbox",
        "title": "おかえり珈琲と雑貨", "title_short": "おかえり珈琲", "user_mail": "owner@example.com",
        "shop_mail_1": "shop@example.com", "postal": "1500043", "pref_id": 13, "pref_name": "東京都",
        "address1": "渋谷区道玄坂1-2-3", "address2": "サンドボックスビル4F", "tel": "03-0000-0000",
        "make_date": _unix(now - timedelta(days=900)), "tax": 10, "reduce_tax_rate": 8,
    }


def image_path(product_id: int) -> str:
    """Where the sandbox store serves a product's picture, under the store's URL."""
    return f"/images/{product_id}.png"


def _product(rng: random.Random, index: int, now: datetime, store_url: str) -> dict[str, Any]:
    cat = rng.choice(list(CATEGORIES))
    cat_name, nouns, (low, high), consumable = CATEGORIES[cat]
    price = round(rng.randint(low, high), -1)
    managed = rng.random() < 0.85
    stocks = rng.choice([0, 1, 2, 3, 5, 8, 12, 20, 35, 60]) if managed else 0
    made = now - timedelta(days=rng.randint(30, 800))
    return {
        "account_id": "PA00000001", "id": 100000 + index,
        "name": f"{rng.choice(STYLES)}{rng.choice(nouns)}", "stocks": stocks, "stock_managed": managed,
        "few_num": 2, "model_number": f"{cat:02d}-{index:04d}", "category": {"id_big": cat, "id_small": 0},
        "group_ids": [], "display_state": "showing" if rng.random() > 0.03 else "hidden",
        "sales_price": price, "price": price, "members_price": None,
        "image_url": f"{store_url}{image_path(100000 + index)}",
        "thumbnail_image_url": f"{store_url}{image_path(100000 + index)}",
        "make_date": _unix(made), "update_date": _unix(made + timedelta(days=rng.randint(0, 29))),
        "_consumable": consumable,
    }


def _customer(rng: random.Random, index: int, now: datetime) -> dict[str, Any]:
    made = now - timedelta(days=rng.randint(1, 700), minutes=rng.randint(0, 1440))
    return {
        "account_id": "PA00000001", "id": 5000000 + index,
        "name": f"{rng.choice(FAMILY)} {rng.choice(GIVEN)}", "mail": f"customer{index:04d}@example.jp",
        "member": True, "receive_mail_magazine": rng.random() < 0.75, "points": 0,
        "sales_count": 0, "make_date": _unix(made), "update_date": _unix(made),
        "_taste": rng.choice(list(CATEGORIES)),
    }


def _sales(rng: random.Random, customers: list[dict[str, Any]], products: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    by_cat: dict[int, list[dict[str, Any]]] = {}
    for p in products:
        by_cat.setdefault(p["category"]["id_big"], []).append(p)
    weights = {c: [1.0 / (rank + 1) for rank in range(len(ps))] for c, ps in by_cat.items()}
    sales: list[dict[str, Any]] = []
    for cust in customers:
        orders = min(int(rng.expovariate(0.45)), 14)
        for _ in range(orders):
            sales.append(_sale(rng, len(sales) + 1, cust, by_cat, weights, now))
    sales.sort(key=lambda s: s["make_date"])
    for cust in customers:
        earned = sum(s["granted_points"] for s in sales if s["customer"]["id"] == cust["id"])
        cust["points"] = rng.randint(0, earned) if earned else 0
        cust["sales_count"] = sum(1 for s in sales if s["customer"]["id"] == cust["id"])
    return sales


def _guest(rng: random.Random, index: int, now: datetime) -> dict[str, Any]:
    """A buyer without an account: ColorMe gives the sale's customer an id, but `member` is false."""
    made = now - timedelta(days=rng.randint(1, 360))
    return {"account_id": "PA00000001", "id": 7000000 + index, "name": f"{rng.choice(FAMILY)} {rng.choice(GIVEN)}",
            "mail": f"guest{index:04d}@example.jp", "member": False, "receive_mail_magazine": False, "points": 0,
            "make_date": _unix(made), "update_date": _unix(made), "_taste": rng.choice(list(CATEGORIES))}


def _guest_sales(rng: random.Random, guests: list[dict[str, Any]], products: list[dict[str, Any]],
                 sales: list[dict[str, Any]], now: datetime) -> None:
    by_cat: dict[int, list[dict[str, Any]]] = {}
    for p in products:
        by_cat.setdefault(p["category"]["id_big"], []).append(p)
    weights = {c: [1.0 / (rank + 1) for rank in range(len(ps))] for c, ps in by_cat.items()}
    for guest in guests:
        for _ in range(rng.choice([1, 1, 2])):
            sales.append(_sale(rng, len(sales) + 1, guest, by_cat, weights, now))
    sales.sort(key=lambda s: s["make_date"])


def _sale(rng: random.Random, number: int, cust: dict[str, Any], by_cat: dict[int, list[dict[str, Any]]],
          weights: dict[int, list[float]], now: datetime) -> dict[str, Any]:
    made = now - timedelta(days=rng.uniform(0.2, 365))
    details = []
    for line_no in range(rng.choice([1, 1, 1, 2, 2, 3])):
        # (a small shop may have no product in the customer's favourite category)
        cat = cust["_taste"] if rng.random() < 0.7 and cust["_taste"] in by_cat else rng.choice(list(by_cat))
        product = rng.choices(by_cat[cat], weights=weights[cat])[0]
        qty = rng.choice([1, 1, 1, 2])
        details.append({
            "id": number * 10 + line_no, "sale_id": 90000000 + number, "product_id": product["id"],
            "product_name": product["name"], "product_model_number": product["model_number"],
            "price": product["sales_price"], "price_with_tax": int(product["sales_price"] * 1.1),
            "product_num": qty, "unit": "個", "subtotal_price": int(product["sales_price"] * 1.1) * qty,
        })
    total = sum(d["subtotal_price"] for d in details)
    customer = {k: v for k, v in cust.items() if not k.startswith("_")}
    return {
        "id": 90000000 + number, "account_id": "PA00000001", "make_date": _unix(made),
        "update_date": _unix(min(made + timedelta(hours=rng.randint(0, 48)), now)), "paid": True,
        "delivered": made < now - timedelta(days=3), "canceled": rng.random() < 0.02,
        "point_state": "fixed", "granted_points": total // 100, "use_points": 0,
        "product_total_price": total, "delivery_total_charge": 0 if total >= 5000 else 600,
        "total_price": total + (0 if total >= 5000 else 600), "customer": customer, "details": details,
    }
