"""The platform seam: a toy platform defined only in this file goes the whole way through generic code.

Install hook → OAuth → active shop → sync → storefront event → scenario tick → delivered mail, with
hook names, a signature header, an event format and point-expiry data of its own. Nothing outside
this file knows the toy exists, so any place that special-cases a real platform breaks this test.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient
from pydantic import Field
from sqlalchemy import ColumnElement, select

from connectors.base import CustomerRecord, OrderLineRecord, OrderRecord, ProductRecord, ShopConnector, ShopInfo
from connectors.errors import BadResponse, BadSignature, Unauthorized
from connectors.platform import Grant, HookHandler, InstallRequested, Platform, PlatformConfig, Uninstalled
from connectors.signatures import hmac_sha256_b64
from connectors.storefront import BasketItem, InvalidEvent, StorefrontEvent
from plugin.channels.base import Channel, Draft, OutgoingMessage
from plugin.delivery.batch import deliver
from plugin.engine.tick import run_shop_tick
from plugin.platforms import Platforms, discover
from plugin.runtime import build_runtime
from plugin.storage.models import Cart, Customer, InstallState, Message, MessageStatus, Order, Product, Shop
from plugin.sync.run import run_sync
from plugin.web.app import create_app
from tests.factories import enable

PLUGIN_SOURCE = Path(__file__).parent.parent / "plugin"
ACCOUNT = "toy-shop-1"
TOKEN = "toy-token-for-" + ACCOUNT
SIGNATURE = "X-Toy-Signature"


class ToyConfig(PlatformConfig):
    hook_secret: str = Field(default="", alias="TOY_HOOK_SECRET")


class ToyApi:
    """The toy platform's whole back end, in memory: one shop and what its script tags say."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.script_tags: dict[str, str] = {}
        self.open_connectors = 0

    def shop(self) -> ShopInfo:
        return ShopInfo(external_id=ACCOUNT, name="おもちゃ屋", domain="https://toy.example", owner_email="o@toy.example")

    def customers(self) -> list[CustomerRecord]:
        return [CustomerRecord(external_id="c1", email="hanako@toy.example", name="花子", email_consent=True,
                               points_balance=300, updated_at=self.now - timedelta(days=1),
                               points_expire_at=self.now + timedelta(days=20))]

    def products(self) -> list[ProductRecord]:
        return [ProductRecord(external_id="p1", code="TOY-1", group_code="TOY-1", name="木のパズル", price=1500,
                              currency="JPY", stock=5, category="知育", url="https://toy.example/p1",
                              image_url="", visible=True, updated_at=self.now - timedelta(days=1))]

    def orders(self) -> list[OrderRecord]:
        ordered = self.now - timedelta(days=30)
        return [OrderRecord(external_id="o1", customer_external_id="c1", ordered_at=ordered, updated_at=ordered,
                            total=1500, currency="JPY", canceled=False,
                            lines=[OrderLineRecord(product_external_id="p1", name="木のパズル", unit_price=1500,
                                                   quantity=1)])]


class ToyConnector(ShopConnector):
    platform = "toy"

    def __init__(self, api: ToyApi) -> None:
        self.api = api
        api.open_connectors += 1

    def fetch_shop(self) -> ShopInfo:
        return self.api.shop()

    def shop_with_address(self) -> tuple[ShopInfo, str]:
        return self.api.shop(), "〒100-0001 東京都千代田区1-1"

    def iter_customers(self, updated_since: datetime | None) -> Iterator[CustomerRecord]:
        yield from self.api.customers()

    def iter_products(self, updated_since: datetime | None) -> Iterator[ProductRecord]:
        yield from self.api.products()

    def iter_orders(self, updated_since: datetime | None, history_start: datetime) -> Iterator[OrderRecord]:
        yield from self.api.orders()

    def close(self) -> None:
        self.api.open_connectors -= 1


class ToyPlatform(Platform[ToyConfig]):
    """Hooks named unlike any real platform's, form-encoded beacons, expiry dates in its own data."""

    name = "toy"
    title = "Toy"
    config_class = ToyConfig
    points_expire_after = None
    api: ToyApi

    @property
    def hooks(self) -> Mapping[str, HookHandler]:
        return {"app_installed": self._installed, "app_removed": self._removed}

    def _verified(self, body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        if headers.get(SIGNATURE) != hmac_sha256_b64(self.config.hook_secret, body):
            raise BadSignature("toy signature does not match", platform=self.name)
        return dict(json.loads(body))

    def _installed(self, body: bytes, headers: Mapping[str, str]) -> InstallRequested:
        data = self._verified(body, headers)
        return InstallRequested(account=data["shop"], owner_email=data.get("owner", ""))

    def _removed(self, body: bytes, headers: Mapping[str, str]) -> Uninstalled:
        data = self._verified(body, headers)
        return Uninstalled(account=data["shop"], delivery_key=f"removed:{data['shop']}:{data['at']}")

    def check_account(self, account: str) -> None:
        if not account.startswith("toy-"):
            raise BadResponse("toy accounts start with toy-", platform=self.name)

    def authorize_url(self, account: str, redirect_uri: str, state: str) -> str:
        return "https://toy.example/authorize?" + urlencode({"shop": account, "redirect_uri": redirect_uri, "state": state})

    def exchange_code(self, code: str, redirect_uri: str) -> Grant:
        if code != "good-code" or not redirect_uri.endswith("/toy/oauth/callback"):
            raise Unauthorized("toy refused the code", platform=self.name, status=400)
        return Grant(access_token=TOKEN, scope="everything")

    def open_connector(self, access_token: str, now: datetime) -> ShopConnector:
        if access_token != TOKEN:
            raise Unauthorized("toy does not know this token", platform=self.name, status=401)
        return ToyConnector(self.api)

    def script_body(self) -> str:
        return "/* toy storefront script */"

    def register_script(self, connector: ShopConnector, src: str, scope: str = "") -> str:
        self.api.script_tags["1"] = src
        return "1"

    def update_script(self, connector: ShopConnector, script_id: str, src: str, scope: str = "") -> None:
        self.api.script_tags[script_id] = src

    def remove_script(self, connector: ShopConnector, script_id: str) -> None:
        self.api.script_tags.pop(script_id, None)

    def parse_event(self, body: bytes) -> StorefrontEvent:
        fields = dict(parse_qsl(body.decode(errors="replace")))
        if fields.get("kind") != "basket" or not fields.get("who"):
            raise InvalidEvent("toy beacons are kind=basket&who=...")
        items = tuple(BasketItem(product_id=pid, quantity=int(qty))
                      for pid, qty, _price in (item.split("*") for item in fields.get("items", "").split(",") if item))
        return StorefrontEvent(kind="basket", visitor_id="toy-browser-0123456789ab", customer_id=fields["who"], items=items)


@pytest.fixture
def toy_runtime(settings, engine, clock, broker):  # type: ignore[no-untyped-def]
    """A runtime configured with the toy's own variable, serving the toy beside the discovered platforms."""
    settings = settings.model_copy(update={"platform_settings": {**settings.platform_settings,
                                                                 "TOY_HOOK_SECRET": "toy-secret"}})
    runtime = build_runtime(settings, clock=clock, broker=broker, engine=engine)
    toy = ToyPlatform().configured(settings.platform_settings)
    toy.api = ToyApi(clock.now())
    runtime.platforms.register(toy)
    yield runtime, toy
    runtime.close_channels()


def _hook(client: TestClient, hook: str, payload: dict[str, object]):  # type: ignore[no-untyped-def]
    body = json.dumps(payload).encode()
    return client.post(f"/toy/hooks/{hook}", content=body, headers={SIGNATURE: hmac_sha256_b64("toy-secret", body)})


def _install(client: TestClient) -> None:
    answer = _hook(client, "app_installed", {"shop": ACCOUNT, "owner": "o@toy.example"})
    assert answer.status_code == 200
    start = client.get(urlsplit(answer.json()["redirect_url"]).path + f"?account_id={ACCOUNT}", follow_redirects=False)
    assert start.status_code == 303 and start.headers["location"].startswith("https://toy.example/authorize")
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    callback = client.get(f"/toy/oauth/callback?code=good-code&state={state}", follow_redirects=False)
    assert callback.status_code == 303 and callback.headers["location"] == "/app/"


def test_a_toy_platform_goes_from_install_hook_to_a_delivered_mail(toy_runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    runtime, toy = toy_runtime
    client = TestClient(create_app(runtime))
    # Given the toy merchant installs Okaeri through the generic hook and OAuth routes
    _install(client)
    shop = session.execute(select(Shop).where(Shop.platform == "toy")).scalar_one()
    assert shop.state == InstallState.active and shop.sender_address.startswith("〒100-0001")
    assert runtime.cipher.decrypt(shop.access_token_encrypted) == TOKEN
    assert toy.api.script_tags == {"1": f"http://okaeri.test/storefront/toy.js?key={shop.event_key}"}
    assert client.get("/storefront/toy.js").text == "/* toy storefront script */"
    # When the first sync runs, a visitor's basket beacon arrives, and two hours pass
    assert run_sync(runtime, shop.id, full=True) == {"customers": 1, "products": 1, "orders": 1}
    beacon = client.post(f"/events/toy/{shop.event_key}", content=b"kind=basket&who=c1&items=p1*2*1500")
    assert beacon.status_code == 202 and beacon.json() == {"ok": True}
    enable(session, shop, "cart_recovery", clock.now())
    clock.advance(hours=2)
    # Then the tick writes the cart reminder and delivery sends it to the toy's customer
    queued = run_shop_tick(runtime, shop.id)
    assert [deliver(runtime, message_id)[0] for message_id, _ in queued] == ["sent"]
    mail = catcher.snapshot()[0]
    assert mail["To"].addresses[0].addr_spec == "hanako@toy.example" and "木のパズル" in mail.get_body(("plain",)).get_content()
    assert toy.api.open_connectors == 0  # every connector the generic code opened was closed


class MemoryChannel(Channel):
    """A toy channel: records what it would send; reaches anyone with an address, no consent flag."""

    name = "memory"

    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []

    def address(self) -> ColumnElement[str]:
        return Customer.__table__.c.email  # type: ignore[attr-defined,no-any-return]

    def consented(self) -> ColumnElement[bool]:
        return Customer.__table__.c.email != ""  # type: ignore[attr-defined,no-any-return]

    def accepts(self, customer: Customer) -> bool:
        return bool(customer.email)

    def render(self, draft: Draft) -> OutgoingMessage:
        names = ", ".join(item["name"] for item in draft.variables["items"])
        return OutgoingMessage(draft.message_id, draft.to_address, draft.to_name, draft.from_name, "memo", names, "",
                               draft.unsubscribe_url)

    def send(self, message: OutgoingMessage) -> None:
        self.sent.append(message)


def test_a_toy_platform_and_a_toy_channel_go_the_whole_way_together(toy_runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    # Given a toy shop installed and synced, with cart recovery sent on a channel defined here
    runtime, _ = toy_runtime
    channel = runtime.channels["memory"] = MemoryChannel()
    client = TestClient(create_app(runtime))
    _install(client)
    shop = session.execute(select(Shop).where(Shop.platform == "toy")).scalar_one()
    run_sync(runtime, shop.id, full=True)
    enable(session, shop, "cart_recovery", clock.now(), channel="memory")
    # When a basket beacon arrives, two hours pass, the tick writes and the worker delivers
    assert client.post(f"/events/toy/{shop.event_key}", content=b"kind=basket&who=c1&items=p1*1*1500").status_code == 202
    clock.advance(hours=2)
    assert [deliver(runtime, message_id)[0] for message_id, _ in run_shop_tick(runtime, shop.id)] == ["sent"]
    # Then the toy channel holds the reminder with the synced product's name, and no mail went out
    assert [(m.to_address, m.body_text) for m in channel.sent] == [("hanako@toy.example", "木のパズル")]
    assert catcher.snapshot() == []
    assert session.execute(select(Message.channel, Message.status)).one() == ("memory", MessageStatus.sent)


def test_toy_data_lands_in_storage_with_the_platforms_own_point_expiry(toy_runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    runtime, toy = toy_runtime
    _install(TestClient(create_app(runtime)))
    shop = session.execute(select(Shop).where(Shop.platform == "toy")).scalar_one()
    run_sync(runtime, shop.id, full=True)
    customer = session.execute(select(Customer).where(Customer.shop_id == shop.id)).scalar_one()
    assert customer.points_balance == 300 and customer.last_order_at is not None
    assert customer.points_expire_at == clock.now() + timedelta(days=20)  # the toy's date, not an order-based rule
    assert session.execute(select(Product.name).where(Product.shop_id == shop.id)).scalar_one() == "木のパズル"
    assert session.execute(select(Order.total).where(Order.shop_id == shop.id)).scalar_one() == 1500


def test_toy_hooks_are_verified_and_its_uninstall_stops_sending(toy_runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    runtime, _ = toy_runtime
    client = TestClient(create_app(runtime))
    forged = client.post("/toy/hooks/app_installed", content=b'{"shop": "toy-x"}', headers={SIGNATURE: "forged"})
    assert forged.status_code == 401 and session.execute(select(Shop)).first() is None
    assert client.post("/toy/hooks/install", content=b"{}").status_code == 404  # the toy's table has no such hook
    assert client.get("/toy/oauth/start?account_id=PA12345678").status_code == 400  # the toy's own account rule
    _install(client)
    removed = {"shop": ACCOUNT, "at": 1}
    assert _hook(client, "app_removed", removed).json()["changed"] is True
    assert _hook(client, "app_removed", removed).json()["changed"] is False
    session.expire_all()
    shop = session.execute(select(Shop).where(Shop.platform == "toy")).scalar_one()
    assert shop.state == InstallState.uninstalled and shop.access_token_encrypted == ""
    assert session.execute(select(Message).where(Message.status == MessageStatus.pending)).first() is None


def test_a_toy_beacon_the_toy_cannot_parse_is_a_422_and_stores_nothing(toy_runtime, session) -> None:  # type: ignore[no-untyped-def]
    runtime, _ = toy_runtime
    client = TestClient(create_app(runtime))
    _install(client)
    shop = session.execute(select(Shop).where(Shop.platform == "toy")).scalar_one()
    answer = client.post(f"/events/toy/{shop.event_key}", content=b'{"type": "basket"}')
    assert answer.status_code == 422 and "kind=basket" in answer.json()["error"]
    assert session.execute(select(Cart)).first() is None


def test_the_registry_finds_installed_platforms_through_entry_points() -> None:
    names = {descriptor.name for descriptor in discover()}
    assert names and all(isinstance(d, Platform) for d in discover())


def test_a_second_platform_under_a_taken_name_is_refused() -> None:
    registry = Platforms([ToyPlatform()])
    with pytest.raises(ValueError, match="registered already"):
        registry.register(ToyPlatform())


def test_generic_code_names_no_platform() -> None:
    # The demo sandbox plays one real platform on purpose; everything else in plugin/ asks the registry.
    names = {descriptor.name for descriptor in discover()}
    offenders = [
        f"{path.relative_to(PLUGIN_SOURCE.parent)}:{number}"
        for path in PLUGIN_SOURCE.rglob("*.py") if "demo" not in path.relative_to(PLUGIN_SOURCE).parts
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if any(name in line for name in names)
    ]
    assert offenders == []


def test_connectors_never_import_the_app() -> None:
    sources = (PLUGIN_SOURCE.parent / "connectors").rglob("*.py")
    assert [p.name for p in sources if "from plugin" in p.read_text() or "import plugin" in p.read_text()] == []


def test_an_oauth_state_carries_one_code_only(toy_runtime, session) -> None:  # type: ignore[no-untyped-def]
    # Given a merchant who completed the toy's OAuth, and someone who kept the state cookie
    runtime, _ = toy_runtime
    client = TestClient(create_app(runtime))
    assert _hook(client, "app_installed", {"shop": ACCOUNT, "owner": "o@toy.example"}).status_code == 200
    start = client.get(f"/toy/oauth/start?account_id={ACCOUNT}", follow_redirects=False)
    kept = start.cookies.get("okaeri_oauth")
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    assert client.get(f"/toy/oauth/callback?code=good-code&state={state}", follow_redirects=False).status_code == 303
    token = session.execute(select(Shop.access_token_encrypted).where(Shop.platform == "toy")).scalar_one()
    # When the same state comes back with the cookie and another code
    client.cookies.set("okaeri_oauth", kept or "")
    replay = client.get(f"/toy/oauth/callback?code=good-code&state={state}", follow_redirects=False)
    # Then it is refused, and the install is as it was
    assert replay.status_code == 400 and "already used" in replay.text
    session.expire_all()
    assert session.execute(select(Shop.access_token_encrypted).where(Shop.platform == "toy")).scalar_one() == token
