"""`okaeri demo`: web + worker + scheduler + sandbox shop + mail catcher in one process."""
from __future__ import annotations

import html
import json
import logging
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

import dramatiq
import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select
from sqlmodel import col

from plugin.clock import Clock
from plugin.demo import shopify_stack
from plugin.demo.line_demo import connect_line, fake_line_for, line_demo_router
from plugin.demo.mailcatcher import MailCatcher, free_port
from plugin.demo.routes import demo_router
from plugin.demo.sandbox.app import SandboxConfig, create_sandbox_app
from plugin.demo.sandbox.line_api import FakeLineApi
from plugin.demo.sandbox.seed import SandboxData, generate
from plugin.demo.sandbox.visitors import restock, simulate_visitors, sold_out_wanted
from plugin.jobs.scheduler import Scheduler
from plugin.jobs.worker import start_worker
from plugin.runtime import Runtime, build_runtime
from plugin.settings import Settings, ensure_secret_key
from plugin.storage.db import migrate
from plugin.storage.models import InstallState, ScriptTag, Shop, SyncState
from plugin.web.app import create_app

__all__ = ["DemoError", "DemoStack", "build_demo", "run_demo", "install_via_browser_flow", "port_in_use"]

log = logging.getLogger("okaeri.demo")


class DemoError(Exception):
    """A reason the demo cannot start, said in one line."""


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


@dataclass
class DemoStack:
    app: FastAPI
    runtime: Runtime
    sandbox: SandboxData
    catcher: MailCatcher
    base_url: str
    line: FakeLineApi | None = None  # the fake LINE the LINE channel pushes to (plugin.demo.line_demo)
    platform: str = "colorme"  # the sandbox platform the demo installs into (--platform)
    shopify: shopify_stack.ShopifyDemo | None = None  # the sandbox Shopify shop (--platform shopify)


class _Identity(TypedDict):
    seed: int
    anchor: int
    client_id: str
    client_secret: str
    webhook_secret: str


def _demo_identity(data_dir: Path, seed: int) -> _Identity:
    """Sandbox credentials and the shop's anchor time, kept so a second start is the same shop."""
    path = data_dir / "sandbox.json"
    if path.exists():
        identity: _Identity = json.loads(path.read_text())
        return identity
    identity = {"seed": seed, "anchor": int(time.time()), "client_id": "okaeri-demo",
                "client_secret": secrets.token_hex(16), "webhook_secret": secrets.token_hex(16)}
    path.write_text(json.dumps(identity))
    return identity


PLATFORMS = ("colorme", shopify_stack.PLATFORM)  # what `okaeri demo --platform` can install into


def build_demo(settings: Settings, host: str, port: int, seed: int, *,
               broker: dramatiq.Broker | None = None, clock: Clock | None = None, platform: str = "colorme") -> DemoStack:
    """Wire everything for the demo (or an end-to-end test) without starting the server."""
    if platform not in PLATFORMS:
        raise DemoError(f"the demo has no sandbox for {platform!r}; choose one of {', '.join(PLATFORMS)}")
    settings = ensure_secret_key(settings)
    identity = _demo_identity(settings.data_dir, seed)
    base_url = f"http://{host}:{port}"
    catcher = MailCatcher(port=free_port(), mbox_path=settings.data_dir / "outbox.mbox").start()
    sandbox_colorme = {
        "COLORME_API_BASE": f"{base_url}/sandbox", "COLORME_CLIENT_ID": identity["client_id"],
        "COLORME_CLIENT_SECRET": identity["client_secret"], "COLORME_WEBHOOK_SECRET": identity["webhook_secret"],
        "COLORME_REQUESTS_PER_MINUTE": 6000,
        **shopify_stack.shopify_settings(base_url, str(identity["client_id"]), str(identity["client_secret"])),
    }
    settings = settings.model_copy(update={
        "base_url": base_url, "platform_settings": {**settings.platform_settings, **sandbox_colorme},
        "smtp_host": "127.0.0.1", "smtp_port": catcher.port,
        # Every simulated visitor posts from loopback: one address, many visitors.
        "rate_limit_events_visitor": settings.rate_limit_events_shop,
    })
    runtime = build_runtime(settings, broker=broker, clock=clock)
    migrate(runtime.engine)
    anchor = datetime.fromtimestamp(int(identity["anchor"]), UTC)
    data = generate(int(identity["seed"]), anchor, f"{base_url}/sandbox/store")
    config = SandboxConfig(app_base_url=base_url, client_id=str(identity["client_id"]),
                           client_secret=str(identity["client_secret"]),
                           webhook_secret=str(identity["webhook_secret"]),
                           state_file=settings.data_dir / "sandbox-tokens.json")
    config.load()
    _restore_script_tag(runtime, data, base_url)
    app = create_app(runtime)
    sandbox = create_sandbox_app(data, config)
    line = fake_line_for(runtime)
    if line is not None:
        sandbox.include_router(line.router(), prefix="/line")  # the same fake LINE over HTTP: /sandbox/line/v2/bot/…
        app.include_router(line_demo_router(line))
    app.mount("/sandbox", sandbox)
    shopify = None
    if platform == shopify_stack.PLATFORM:
        shopify = shopify_stack.mount_shopify_sandbox(app, runtime, base_url, str(identity["client_id"]),
                                                      str(identity["client_secret"]), anchor, int(identity["seed"]))
    app.include_router(demo_router(catcher))
    return DemoStack(app=app, runtime=runtime, sandbox=data, catcher=catcher, base_url=base_url, line=line,
                     platform=platform, shopify=shopify)


def _restore_script_tag(runtime: Runtime, data: SandboxData, base_url: str) -> None:
    with runtime.sessions() as session:
        shop = session.execute(select(Shop).where(col(Shop.platform) == "colorme")).scalars().first()
        tags = list(session.execute(select(ScriptTag).where(col(ScriptTag.shop_id) == shop.id)).scalars()) if shop else []
    if shop is not None and shop.state == InstallState.active and shop.event_key:
        for tag in tags:  # one per display scope, as the install placed them
            data.script_tags.append({"id": int(tag.tag_id) if tag.tag_id.isdigit() else 1, "account_id": data.shop["id"],
                                     "src": f"{base_url}/storefront/colorme.js?key={shop.event_key}",
                                     "display_scope": tag.scope, "integrity": tag.integrity})


def install_via_browser_flow(browser: httpx.Client) -> httpx.Response:
    """Do what a merchant does: press install in the shop admin, approve, land on settings.

    `browser` follows redirects and keeps cookies, like a browser; it ends logged in.
    """
    consent = browser.post("/sandbox/admin/install")
    fields = dict(re.findall(r"name='(redirect_uri|state|scope)' value='([^']*)'", consent.text))
    if "redirect_uri" not in fields:
        raise DemoError(f"sandbox install did not reach the consent page ({consent.status_code})")
    fields = {k: html.unescape(v) for k, v in fields.items()}
    return browser.post("/sandbox/oauth/authorize", data={**fields, "decision": "allow"})


def _wait_for_sync(runtime: Runtime, timeout: float = 300) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with runtime.sessions() as session:
            if session.execute(select(col(SyncState.id)).where(col(SyncState.resource) == "orders")).first():
                return True
        time.sleep(0.5)
    return False


def _prepare_shopify_shop(stack: DemoStack, demo: shopify_stack.ShopifyDemo) -> None:
    """Install into the sandbox Shopify shop through the real install routes, sync, then let its
    buyers abandon a few checkouts (signed webhooks): cart recovery has something to recover."""
    if shopify_stack.installed_shop_id(stack.runtime) is None:
        with httpx.Client(base_url=stack.base_url, follow_redirects=True, timeout=30) as browser:
            shopify_stack.install_shopify_via_browser(browser, demo)
    if _wait_for_sync(stack.runtime):
        sent = shopify_stack.send_abandoned_checkouts(stack.runtime, demo)
        print(f"  sandbox Shopify shop installed and synced; {len(sent)} abandoned checkouts arrived by webhook", flush=True)


def _prepare_shop(stack: DemoStack) -> None:
    """First start: install into the sandbox and let visitors fill baskets; later starts resume."""
    if stack.shopify is not None:
        _prepare_shopify_shop(stack, stack.shopify)
        return
    with stack.runtime.sessions() as session:
        shop = session.execute(select(Shop).where(col(Shop.platform) == "colorme")).scalars().first()
    if shop is not None and shop.state == InstallState.active:
        print("  resuming the installed sandbox shop", flush=True)
        return
    with httpx.Client(base_url=stack.base_url, follow_redirects=True, timeout=30) as browser:
        install_via_browser_flow(browser)
    if _wait_for_sync(stack.runtime):
        accepted = simulate_visitors(stack.sandbox, stack.runtime.clock.now())
        restock(stack.sandbox, sold_out_wanted(stack.sandbox), stack.runtime.clock.now())
        with stack.runtime.sessions() as session:
            shop_id = session.execute(select(col(Shop.id)).where(col(Shop.platform) == "colorme")).scalar()
        stack.runtime.tasks.sync_shop(shop_id or 0)  # picks up the restock: stock triggers
        print(f"  sandbox shop synced; simulated visitors sent {accepted} storefront events;"
              " a few sold-out items were restocked", flush=True)
    if stack.line is not None:
        linked = connect_line(stack.runtime, stack.line)
        if linked:
            print(f"  LINE account connected; {linked} customers linked their LINE (the others get mail)", flush=True)


def run_demo(settings: Settings, host: str = "127.0.0.1", port: int = 8000, seed: int = 42,
             platform: str = "colorme") -> None:
    """Run until Ctrl-C; a second start resumes from the same data directory."""
    if port_in_use(host, port):
        raise DemoError(f"port {port} on {host} is already in use (another `okaeri demo`?); try --port")
    stack = build_demo(settings, host, port, seed, platform=platform)
    worker = start_worker(stack.runtime)
    scheduler = Scheduler(stack.runtime, interval=30)
    threading.Thread(target=scheduler.run_forever, name="okaeri-scheduler", daemon=True).start()
    server = uvicorn.Server(uvicorn.Config(stack.app, host=host, port=port, log_level="warning"))
    threading.Thread(target=_announce, args=(stack, server), daemon=True).start()
    try:
        server.run()
    finally:
        scheduler.stop()
        worker.stop()
        stack.catcher.stop()
        stack.runtime.close()
        print("Okaeri demo stopped.", flush=True)


def _announce(stack: DemoStack, server: uvicorn.Server) -> None:
    while not server.started:
        time.sleep(0.1)
    url = stack.base_url
    print(f"\nOkaeri demo is running (SMTP catcher on 127.0.0.1:{stack.catcher.port}).\n"
          f"  Settings (the one switch): {url}/demo/login\n"
          f"  Delivered emails:          {url}/demo/outbox\n"
          f"  Delivered LINE messages:   {url}/demo/line\n"
          + (f"  Sandbox Shopify admin:     {stack.shopify.admin_app_url} (opens the app)\n"
             f"  Inside the admin frame:    {stack.shopify.admin_app_url}?embedded=1\n" if stack.shopify is not None
             else f"  Sandbox shop admin:        {url}/sandbox/\n") +
          "Press Ctrl-C to stop.\n", flush=True)
    try:
        _prepare_shop(stack)
    except Exception as exc:  # noqa: BLE001 - report, keep serving
        print(f"  could not prepare the sandbox shop: {exc}", flush=True)
