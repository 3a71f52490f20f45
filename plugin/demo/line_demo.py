"""The demo's LINE: a fake LINE API in the process (plugin.demo.sandbox.line_api) that the LINE
channel pushes to, one LINE account for the sandbox shop, half of its customers linked through the
real link-code flow (a one-time code sent to the account's webhook, signed as LINE signs), and a
page of the pushes LINE "delivered" (/demo/line)."""
from __future__ import annotations

import html
import json

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlmodel import col

from plugin.channels.line import LineChannel
from plugin.channels.line_links import issue_code
from plugin.console.line_accounts import add_account, webhook_url
from plugin.demo.sandbox.line_api import FakeLineApi, follow_event, message_event, send_webhook
from plugin.runtime import Runtime
from plugin.storage.models import Customer, InstallState, LineAccount, Shop

__all__ = ["DEMO_TOKEN", "DEMO_SECRET", "fake_line_for", "connect_line", "line_demo_router"]

DEMO_TOKEN = "demo-line-channel-access-token"
DEMO_SECRET = "demo-line-channel-secret"
DEMO_BOT = "U0000000000000000000000000000demo"


def fake_line_for(runtime: Runtime) -> FakeLineApi | None:
    """The runtime's LINE channel pushing to a fake LINE in this process; None without a LINE channel."""
    channel = runtime.channels.get("line")
    if not isinstance(channel, LineChannel):
        return None
    fake = FakeLineApi()
    fake.add_bot(DEMO_TOKEN, user_id=DEMO_BOT, basic_id="@okaeri-demo", name="Okaeri デモ商店")
    channel.use_transport(fake.transport())
    return fake


def connect_line(runtime: Runtime, fake: FakeLineApi) -> int:
    """Once: the shop's LINE account, and every other customer linked by a code sent in "LINE"; how many linked."""
    with runtime.sessions() as session:
        shop = session.execute(select(Shop).where(col(Shop.state) == InstallState.active)).scalars().first()
        if shop is None or session.execute(select(LineAccount).where(col(LineAccount.shop_id) == shop.id)).first():
            return 0
        account = add_account(runtime, session, shop, {"name": "本店", "token": DEMO_TOKEN, "secret": DEMO_SECRET})
        customers = session.execute(select(Customer).where(
            col(Customer.shop_id) == shop.id, col(Customer.email_consent).is_(True)).order_by(col(Customer.id))).scalars().all()
        chosen = customers[::2]
        codes = [(c.id, issue_code(session, account, c, runtime.clock.now())) for c in chosen]
        url = webhook_url(runtime, account)
    for customer_id, code in codes:
        user = f"U{customer_id:032d}"
        send_webhook(url, DEMO_SECRET, DEMO_BOT, follow_event(user), message_event(user, f"OKAERI-{code}"))
    return len(codes)


def line_demo_router(fake: FakeLineApi) -> APIRouter:
    router = APIRouter(prefix="/demo")

    @router.get("/line", response_class=HTMLResponse)
    def pushes() -> HTMLResponse:
        rows = "".join(
            f"<tr><td><code>{html.escape(p.to)}</code></td><td><pre>{html.escape(_text(p.messages))}</pre></td>"
            f"<td>{html.escape(_alt(p.messages))}</td></tr>" for p in reversed(fake.pushes))
        body = (f"<h1>LINE（デモ）: 届いたメッセージ {len(fake.pushes)} 件 / LINE pushes delivered</h1>"
                "<table><thead><tr><th>userId</th><th>テキスト / text</th><th>Flex（代替テキスト / alt text）</th></tr></thead>"
                f"<tbody>{rows}</tbody></table>")
        return HTMLResponse(f"<!doctype html><html lang='ja'><head><meta charset='utf-8'><title>LINE demo</title>"
                            f"<link rel='stylesheet' href='/static/console.css'></head><body><main>{body}</main></body></html>")

    @router.get("/line.json", include_in_schema=False)
    def pushes_json() -> HTMLResponse:
        return HTMLResponse(json.dumps([{"to": p.to, "messages": p.messages} for p in fake.pushes], ensure_ascii=False),
                            media_type="application/json")
    return router


def _text(messages: list[dict[str, object]]) -> str:
    return next((str(m.get("text", "")) for m in messages if m.get("type") == "text"), "")


def _alt(messages: list[dict[str, object]]) -> str:
    return " / ".join(str(m.get("altText", "")) for m in messages if m.get("type") == "flex")
