"""The sandbox platform's HTTP surface: merchant admin, OAuth, App-store hooks, REST v1."""
from __future__ import annotations

import html
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI, Form, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from connectors.signatures import hmac_sha256_b64
from plugin.demo.sandbox.images import product_png
from plugin.demo.sandbox.lifecycle import add_lifecycle_routes, script_tag_problem
from plugin.demo.sandbox.listing import register_listings
from plugin.demo.sandbox.ratelimit import RateLimit, enforce
from plugin.demo.sandbox.seed import SandboxData
from plugin.demo.sandbox.visitors import restock, sold_out_wanted

__all__ = ["SandboxConfig", "create_sandbox_app"]

JST = ZoneInfo("Asia/Tokyo")
OTHER_ACCOUNT = "PA99999999"  # a second shop the merchant may be logged in to when authorising
APPLICATION_ID = 4242  # the sandbox's id for the Okaeri OAuth application (script tags carry it)


@dataclass
class SandboxConfig:
    app_base_url: str  # where Okaeri listens (hooks are posted there)
    client_id: str
    client_secret: str
    webhook_secret: str
    codes: dict[str, tuple[str, float]] = field(default_factory=dict)  # code → (redirect_uri, expiry)
    tokens: set[str] = field(default_factory=set)  # tokens of the sandbox shop's own account
    code_accounts: dict[str, str] = field(default_factory=dict)  # code → another account it was issued for
    code_scopes: dict[str, str] = field(default_factory=dict)  # code → the scopes the merchant approved
    other_tokens: dict[str, str] = field(default_factory=dict)  # token → another account (not kept across restarts)
    state_file: Path | None = None  # the demo keeps issued tokens across restarts
    rate_limit: RateLimit | None = field(default_factory=RateLimit.from_env)  # 120/min per token, if enforced

    def load(self) -> None:
        if self.state_file and self.state_file.exists():
            self.tokens = set(json.loads(self.state_file.read_text()).get("tokens", []))

    def save(self) -> None:
        if self.state_file:
            self.state_file.write_text(json.dumps({"tokens": sorted(self.tokens)}))


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"code": code, "message": message, "status": status}]}, status)


def _page(title: str, body: str) -> HTMLResponse:
    """A sandbox page in the console's look (its stylesheet is served by the app the sandbox is mounted in)."""
    return HTMLResponse(
        f"<!doctype html><html lang='ja'><head><meta charset='utf-8'><meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><link rel='stylesheet' href='/static/console.css'></head>"
        "<body><header class='top'><span class='brand'>カラーミーショップ</span><span class='shop'>サンドボックス</span>"
        "<nav class='console'><a href='/sandbox/'>ショップ管理画面</a><a href='/sandbox/store/'>ストア</a>"
        "<a href='/demo/outbox'>受信したメール</a><a href='/demo/login'>Okaeri 管理画面</a></nav></header>"
        f"<main><section>{body}</section></main></body></html>"
    )


def create_sandbox_app(data: SandboxData, config: SandboxConfig) -> FastAPI:
    """Build the fake platform around generated data."""
    app = FastAPI(title="ColorMe sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.data, app.state.config = data, config
    _admin_routes(app, data, config)
    _store_routes(app, data)
    _oauth_routes(app, data, config)
    _api_routes(app, data, config)
    add_lifecycle_routes(app, config)
    enforce(app, config.rate_limit)
    register_listings(app, data)  # customers, products, sales: ColorMe's paging, 7-day default, 404s
    return app


def _admin_routes(app: FastAPI, data: SandboxData, config: SandboxConfig) -> None:
    @app.get("/", response_class=HTMLResponse)
    def admin() -> HTMLResponse:
        return _page("管理画面", f"<h1>{html.escape(data.shop['title'])} 管理画面</h1>"
                     f"<p>顧客 {len(data.customers)} 人 / 商品 {len(data.products)} 点 / 受注 {len(data.sales)} 件</p>"
                     "<form method='post' action='admin/install'><button id='install'>Okaeri をインストール</button></form>"
                     "<form method='post' action='admin/restock'><button id='restock'>売り切れ商品を再入荷する</button></form>"
                     "<form method='post' action='admin/uninstall'><button>アンインストール</button></form>")

    async def post_hook(path: str, payload: dict[str, Any]) -> httpx.Response:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json",
                   "X-Appstore-Signature": hmac_sha256_b64(config.webhook_secret, body)}
        async with httpx.AsyncClient(timeout=10) as http:
            return await http.post(f"{config.app_base_url}{path}", content=body, headers=headers)

    @app.post("/admin/install")
    async def install() -> Any:
        answer = await post_hook("/colorme/hooks/install", {
            "account_id": data.shop["id"], "application_charge_source_id": "sandbox-plan",
            "recurring_application_charge_id": 1, "mail": data.shop["user_mail"]})
        redirect = answer.json().get("redirect_url") if answer.status_code == 200 else None
        if not redirect:  # ColorMe aborts the install when the hook does not answer properly
            return _page("インストール失敗", f"<p>アプリが応答しませんでした ({answer.status_code})</p>")
        return RedirectResponse(redirect, status_code=303)

    @app.post("/admin/restock")
    def restock_products() -> Any:
        wanted = sold_out_wanted(data)
        restock(data, wanted, datetime.now(JST))
        return _page("再入荷", f"<p>{len(wanted)} 点を再入荷しました（次の同期で反映されます）</p>")

    @app.post("/admin/uninstall")
    async def uninstall() -> Any:
        config.tokens.clear()
        config.save()
        data.script_tags.clear()
        answer = await post_hook("/colorme/hooks/uninstall", {
            "account_id": data.shop["id"], "application_charge_source_id": "sandbox-plan",
            "uninstalled_at": int(time.time()), "reason": "by_shop_owner"})
        return _page("アンインストール", f"<p>アンインストールしました (hook: {answer.status_code})</p>")


def _store_routes(app: FastAPI, data: SandboxData) -> None:
    @app.get("/store/", response_class=HTMLResponse)
    def storefront(pid: int | None = None) -> HTMLResponse:
        product = next((p for p in data.products if p["id"] == pid), None)
        if product is None:
            items = "".join(f"<li><a href='?pid={p['id']}'>{html.escape(p['name'])}</a></li>" for p in data.products[:50])
            return _page(data.shop["title"], f"<h1>{html.escape(data.shop['title'])}</h1><ul>{items}</ul>")
        stock = "在庫あり" if product["stocks"] or not product["stock_managed"] else "売り切れ"
        return _page(product["name"], f"<h1>{html.escape(product['name'])}</h1>"
                     f"<img src='{html.escape(product['image_url'], quote=True)}' width='160' alt=''>"
                     f"<p>{product['sales_price']:,}円（{stock}）</p>")

    @app.get("/store/images/{product_id}.png")
    def product_image(product_id: int) -> Response:
        product = next((p for p in data.products if p["id"] == product_id), None)
        if product is None:
            return Response(status_code=404)
        return Response(product_png(product_id, product["category"]["id_big"]), media_type="image/png",
                        headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/store/cart/", response_class=HTMLResponse)
    def cart() -> HTMLResponse:
        return _page("カート", "<h1>ショッピングカート</h1><p>サンドボックスのカートです。</p>")


def _oauth_routes(app: FastAPI, data: SandboxData, config: SandboxConfig) -> None:
    @app.get("/oauth/authorize", response_class=HTMLResponse)
    def authorize(client_id: str = "", redirect_uri: str = "", response_type: str = "",
                  scope: str = "", state: str = "") -> HTMLResponse:
        if client_id != config.client_id or response_type != "code" or not redirect_uri:
            return _page("エラー", "<p>invalid_request: client_id / redirect_uri / response_type</p>")
        hidden = "".join(f"<input type='hidden' name='{k}' value='{html.escape(v, quote=True)}'>"
                         for k, v in {"redirect_uri": redirect_uri, "state": state, "scope": scope}.items())
        accounts = (f"<p><label>ログイン中のショップ <select name='account'><option value='{data.shop['id']}'>"
                    f"{data.shop['id']}（{html.escape(data.shop['title'])}）</option>"
                    f"<option value='{OTHER_ACCOUNT}'>{OTHER_ACCOUNT}（別のショップ）</option></select></label></p>")
        return _page("アプリの許可", f"<h1>Okaeri にアクセスを許可しますか？</h1><p>権限: {html.escape(scope)}</p>"
                     f"<form method='post'>{hidden}{accounts}"
                     "<button id='approve' name='decision' value='allow'>許可する</button>"
                     "<button name='decision' value='deny'>拒否する</button></form>")

    @app.post("/oauth/authorize")
    def approve(redirect_uri: str = Form(...), state: str = Form(""), decision: str = Form("allow"),
                account: str = Form(""), scope: str = Form("")) -> RedirectResponse:
        if decision != "allow":
            query = urlencode({"error": "access_denied", "error_description": "利用者が拒否しました", "state": state})
            return RedirectResponse(f"{redirect_uri}?{query}", status_code=303)
        code = secrets.token_hex(32)
        config.codes[code] = (redirect_uri, time.time() + 600)
        config.code_scopes[code] = scope
        if account and account != data.shop["id"]:
            config.code_accounts[code] = account
        return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, 'state': state})}", status_code=303)

    @app.post("/oauth/token")
    def token(client_id: str = Form(""), client_secret: str = Form(""), code: str = Form(""),
              grant_type: str = Form(""), redirect_uri: str = Form("")) -> JSONResponse:
        if client_id != config.client_id or client_secret != config.client_secret:
            return JSONResponse({"error": "invalid_client", "error_description": "クライアント認証に失敗しました"}, 401)
        issued = config.codes.pop(code, None)  # a code is exchangeable once
        if grant_type != "authorization_code" or not issued or issued[0] != redirect_uri or issued[1] < time.time():
            return JSONResponse({"error": "invalid_grant", "error_description": "認可コードが無効です"}, 400)
        access_token = secrets.token_hex(32)
        other = config.code_accounts.pop(code, None)
        if other:
            config.other_tokens[access_token] = other
        else:
            config.tokens.add(access_token)
            config.save()
        return JSONResponse({"access_token": access_token, "token_type": "Bearer",
                             "scope": config.code_scopes.pop(code, ""), "created_at": int(time.time())})


def _api_routes(app: FastAPI, data: SandboxData, config: SandboxConfig) -> None:
    def account_of(request: Request) -> str | None:
        """The account a bearer token was issued for, or None for an unknown token."""
        header = request.headers.get("authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        if token in config.tokens:
            return str(data.shop["id"])
        return config.other_tokens.get(token)

    def foreign(request: Request) -> bool:
        return request.state.account != data.shop["id"]

    @app.middleware("http")
    async def require_token(request: Request, call_next: Any) -> Any:
        # Mounted under /sandbox, the path carries the mount's prefix: look at what follows it.
        path = request.url.path.removeprefix(request.scope.get("root_path", ""))
        api = path.startswith(("/v1/", "/appstore/"))
        request.state.account = account_of(request)
        if api and request.state.account is None:
            return _error(401, 401010, "認証に失敗しました")
        return await call_next(request)

    @app.get("/v1/shop.json")
    def shop(request: Request) -> dict[str, Any]:
        if foreign(request):  # another merchant's shop: its own id and name, nothing of the sandbox shop's data
            return {"shop": {**data.shop, "id": request.state.account, "title": "別のショップ", "title_short": "別のショップ",
                             "login_id": "other-shop", "url": f"{data.shop['url']}-other"}}
        return {"shop": data.shop}

    @app.get("/v1/categories.json")
    def categories() -> dict[str, Any]:
        return {"categories": data.categories}

    def own_tag(request: Request, tag_id: int) -> dict[str, Any] | None:
        return next((t for t in data.script_tags
                     if t["id"] == tag_id and t.get("account_id", data.shop["id"]) == request.state.account), None)

    @app.post("/appstore/v1/script_tags.json")
    async def create_script_tag(request: Request) -> JSONResponse:
        tag = _script_tag_body(await _json_body(request))
        if tag is None:
            return _error(422, 422007, "src は必須です")
        if problem := script_tag_problem(tag):
            return _error(422, 422100, problem)
        now = int(time.time())
        record = {"id": max((t["id"] for t in data.script_tags), default=0) + 1, "account_id": request.state.account,
                  "oauth_application_id": APPLICATION_ID, "src": tag["src"],
                  "display_scope": tag.get("display_scope", "shop"), "integrity": tag.get("integrity"),
                  "make_date": now, "update_date": now}
        data.script_tags.append(record)
        return JSONResponse({"script_tag": record})  # the App Store API documents 200 for a create

    @app.get("/appstore/v1/script_tags.json")
    def list_script_tags(request: Request) -> dict[str, Any]:
        return {"script_tags": [t for t in data.script_tags if t.get("account_id", data.shop["id"]) == request.state.account]}

    @app.get("/appstore/v1/script_tags/{tag_id}.json")
    def get_script_tag(tag_id: int, request: Request) -> JSONResponse:
        record = own_tag(request, tag_id)
        return JSONResponse({"script_tag": record}) if record else _error(404, 404100, "スクリプトタグが見つかりません")

    @app.put("/appstore/v1/script_tags/{tag_id}.json")
    async def update_script_tag(tag_id: int, request: Request) -> JSONResponse:
        tag = _script_tag_body(await _json_body(request))
        record = own_tag(request, tag_id)
        if record is None:
            return _error(404, 404100, "スクリプトタグが見つかりません")
        if tag is None:
            return _error(422, 422007, "src は必須です")
        if problem := script_tag_problem(tag):
            return _error(422, 422100, problem)
        record.update({k: tag[k] for k in ("src", "display_scope", "integrity") if k in tag})
        record["update_date"] = int(time.time())
        return JSONResponse({"script_tag": record})

    @app.delete("/appstore/v1/script_tags/{tag_id}.json")
    def delete_script_tag(tag_id: int, request: Request) -> Response:
        record = own_tag(request, tag_id)
        if record is None:
            return _error(404, 404100, "スクリプトタグが見つかりません")
        data.script_tags.remove(record)
        return Response(status_code=204)


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


def _script_tag_body(body: Any) -> dict[str, Any] | None:
    """The `script_tag` object of a create or update, or None without an http(s) `src`."""
    tag = body.get("script_tag") if isinstance(body, dict) else None
    if not isinstance(tag, dict) or not str(tag.get("src", "")).startswith(("https://", "http://")):
        return None
    return tag
