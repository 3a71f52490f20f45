"""Rate limits on the public endpoints (issue 12 item 2): a visitor or a shop key that posts too much,
and a client that hammers tracking or unsubscribe links, get a 429 with Retry-After and a reason in
their language; the limits are shared by every web process when Redis is configured.

Limits here are per hour, not per minute: the sliding-window counter forgives one request when a
window boundary passes mid-test, which a minute makes likely on a loaded machine."""
from __future__ import annotations

import socket
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from plugin.runtime import Runtime
from plugin.settings import ConfigError, load_settings
from plugin.storage.models import BrowseEvent, MessageEvent
from plugin.web.app import create_app
from tests.conftest import require_service
from tests.factories import idle_cart_shop
from tests.live import wait_until
from tests.services import reachable, redis_url


def _app(runtime: Runtime, **limits: Any) -> FastAPI:
    runtime.settings = runtime.settings.model_copy(update=limits)
    return create_app(runtime)


def _view(customer: Any, product: Any) -> dict[str, str]:
    return {"type": "product_view", "visitor": "browser-of-a-busy-visitor-01", "customer_id": customer.external_id,
            "product_id": product.external_id}


def _views(session: Any) -> int:
    return session.execute(select(func.count()).select_from(BrowseEvent)).scalar()


def test_a_visitor_posting_too_many_events_gets_a_429_the_script_can_read_and_nothing_is_written(
        runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    # Given a shop whose visitors may post 3 events an hour
    shop, people, product = idle_cart_shop(session, clock.now(), customers=1)
    client = TestClient(_app(runtime, rate_limit_events_visitor="3/hour"))
    url = f"/events/colorme/{shop.event_key}"
    # When one visitor posts a fourth
    assert [client.post(url, json=_view(people[0], product)).status_code for _ in range(3)] == [202] * 3
    written = _views(session)
    refused = client.post(url, json=_view(people[0], product))
    # Then it is refused in Japanese, with when to retry and the CORS headers, and writes nothing
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 3600
    assert refused.headers["access-control-allow-origin"] == "*"
    assert refused.json()["code"] == "rate_limited" and "アクセスが集中しています" in refused.json()["error"]
    assert _views(session) == written


def test_other_visitors_of_the_same_shop_are_not_held_back_by_one(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    shop, people, product = idle_cart_shop(session, clock.now(), customers=1)
    app, url = _app(runtime, rate_limit_events_visitor="2/hour"), f"/events/colorme/{shop.event_key}"
    noisy, other = TestClient(app, client=("203.0.113.7", 5000)), TestClient(app, client=("198.51.100.9", 5000))
    assert [noisy.post(url, json=_view(people[0], product)).status_code for _ in range(3)] == [202, 202, 429]
    assert other.post(url, json=_view(people[0], product)).status_code == 202


def test_a_shop_key_is_limited_whoever_posts(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    # Given a shop whose key may carry 4 events an hour, and another shop
    shop, people, product = idle_cart_shop(session, clock.now(), customers=1)
    calm, calm_people, calm_product = idle_cart_shop(session, clock.now(), customers=1)
    app = _app(runtime, rate_limit_events_shop="4/hour")
    # When five different addresses post one event each to the first shop
    answers = [TestClient(app, client=(f"192.0.2.{n}", 5000)).post(
        f"/events/colorme/{shop.event_key}", json=_view(people[0], product)).status_code for n in range(1, 6)]
    # Then the fifth is refused, and the other shop's events still go through
    assert answers == [202, 202, 202, 202, 429]
    assert TestClient(app).post(f"/events/colorme/{calm.event_key}", json=_view(calm_people[0], calm_product)).status_code == 202


def test_x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    shop, people, product = idle_cart_shop(session, clock.now(), customers=1)
    url = f"/events/colorme/{shop.event_key}"
    # A visitor who claims a new address on every request is still one visitor
    direct = TestClient(_app(runtime, rate_limit_events_visitor="2/hour"), client=("203.0.113.7", 5000))
    claims = [direct.post(url, json=_view(people[0], product), headers={"X-Forwarded-For": f"10.9.9.{n}"}).status_code
              for n in range(3)]
    assert claims == [202, 202, 429]
    # Behind the configured proxy, the address the proxy saw is the visitor (not what the client claimed)
    proxied = TestClient(_app(runtime, rate_limit_events_visitor="2/hour", trusted_proxies="10.0.0.0/8"),
                         client=("10.0.0.2", 5000))
    first = [proxied.post(url, json=_view(people[0], product),
                          headers={"X-Forwarded-For": f"6.6.6.{n}, 198.51.100.1"}).status_code for n in range(3)]
    second = proxied.post(url, json=_view(people[0], product), headers={"X-Forwarded-For": "198.51.100.2"})
    assert first == [202, 202, 429] and second.status_code == 202


def test_a_bench_shops_key_gets_the_raised_limit_and_others_keep_theirs(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    bench, bench_people, bench_product = idle_cart_shop(session, clock.now(), customers=1)
    shop, people, product = idle_cart_shop(session, clock.now(), customers=1)
    client = TestClient(_app(runtime, rate_limit_events_visitor="2/hour", rate_limit_events_shop="2/hour",
                             rate_limit_raised_keys=f"{bench.event_key}, other-key", rate_limit_raised_events="10/hour"))
    bench_answers = [client.post(f"/events/colorme/{bench.event_key}", json=_view(bench_people[0], bench_product)).status_code
                     for _ in range(11)]
    answers = [client.post(f"/events/colorme/{shop.event_key}", json=_view(people[0], product)).status_code for _ in range(3)]
    assert bench_answers == [202] * 10 + [429] and answers == [202, 202, 429]


def test_open_pixels_and_clicks_are_limited_per_address_and_the_refusal_is_a_page_in_japanese(
        runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    # Given a client that may fetch 2 tracking links an hour
    client = TestClient(_app(runtime, rate_limit_tracking="2/hour"))
    assert client.get("/t/o/1/abc.gif").status_code == 200
    assert client.get("/t/c/1/abc", params={"u": "https://shop.example/"}, follow_redirects=False).status_code == 400
    # When it fetches a third, in a browser
    refused = client.get("/t/c/1/abc", params={"u": "https://shop.example/"}, headers={"Accept": "text/html"})
    pixel = client.get("/t/o/1/abc.gif")
    # Then a Japanese page says to wait, with Retry-After; the pixel is refused too and nothing is recorded
    assert refused.status_code == pixel.status_code == 429 and "retry-after" in refused.headers
    assert refused.headers["content-type"].startswith("text/html") and "アクセスが集中しています" in refused.text
    assert "Too many" not in refused.text
    assert session.execute(select(func.count()).select_from(MessageEvent)).scalar() == 0


def test_unsubscribe_is_limited_per_address_and_says_so_in_english_to_an_english_browser(runtime) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(_app(runtime, rate_limit_unsubscribe="2/hour"))
    english = {"Accept": "text/html", "Accept-Language": "en-US,en;q=0.9,ja;q=0.5"}
    assert [client.post("/u/not-a-token", headers=english).status_code for _ in range(2)] == [400, 400]
    refused = client.post("/u/not-a-token", headers=english)
    assert refused.status_code == 429 and "Too many requests" in refused.text and "アクセス" not in refused.text
    # the confirm page (which mail scanners prefetch) has a count of its own
    assert client.get("/u/not-a-token", headers=english).status_code == 400


@pytest.mark.parametrize("variable, value", [("OKAERI_RATE_LIMIT_EVENTS_VISITOR", "lots"),
                                             ("OKAERI_RATE_LIMIT_TRACKING", "10 per fortnight"),
                                             ("OKAERI_RATE_LIMIT_URL", "memcached://127.0.0.1"),
                                             ("OKAERI_TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal")])
def test_a_bad_rate_limit_setting_stops_the_program_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings(**{variable: value})


def test_limits_are_counted_in_redis_when_the_broker_is_redis_and_in_memory_otherwise() -> None:
    assert load_settings(BROKER_URL="memory://").rate_limit_store == "memory://"
    assert load_settings(BROKER_URL="redis://r:6379/2").rate_limit_store == "redis://r:6379/2"
    assert load_settings(BROKER_URL="amqp://x", OKAERI_RATE_LIMIT_URL="redis://r/3").rate_limit_store == "redis://r/3"



@pytest.mark.service
def test_two_web_processes_share_one_count_through_redis(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    url = redis_url()
    require_service("Redis", reachable(url), f"{url} unreachable (set OKAERI_RATE_LIMIT_URL or BROKER_URL)")
    # Given two app instances (as two `okaeri serve` processes) counting in the same Redis
    shop, people, product = idle_cart_shop(session, clock.now(), customers=1)
    limits = {"rate_limit_url": url, "rate_limit_events_visitor": "3/hour",
              "redis_namespace": f"okaeri-test-{uuid.uuid4().hex[:8]}"}
    first, second = TestClient(_app(runtime, **limits)), TestClient(_app(runtime, **limits))
    event_url = f"/events/colorme/{shop.event_key}"
    # When one visitor's events land on either process in turn
    answers = [(first if n % 2 else second).post(event_url, json=_view(people[0], product)).status_code for n in range(4)]
    # Then the fourth is refused, whichever process took it
    assert answers == [202, 202, 202, 429]


def test_a_rate_limit_store_that_is_down_lets_visitors_through(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    shop, people, product = idle_cart_shop(session, clock.now(), customers=1)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = TestClient(_app(runtime, rate_limit_url=f"redis://127.0.0.1:{port}/0", rate_limit_events_visitor="1/hour"))
    answers = [client.post(f"/events/colorme/{shop.event_key}", json=_view(people[0], product)).status_code for _ in range(2)]
    assert answers == [202, 202]


def test_the_apps_shutdown_closes_its_redis_connections(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    import redis

    url = redis_url()
    require_service("Redis", reachable(url), f"{url} unreachable (set OKAERI_RATE_LIMIT_URL or BROKER_URL)")
    # Given a web app counting its limits in Redis, which has counted an event
    shop, people, product = idle_cart_shop(session, clock.now(), customers=1)
    namespace = f"okaeri-test-{uuid.uuid4().hex[:8]}"
    app = _app(runtime, rate_limit_url=url, redis_namespace=namespace)
    watcher = redis.Redis.from_url(url)

    def ours() -> int:
        return sum(1 for c in watcher.client_list() if c.get("name") == f"{namespace}:ratelimit")

    with TestClient(app) as client:
        assert client.post(f"/events/colorme/{shop.event_key}", json=_view(people[0], product)).status_code == 202
        assert ours() >= 1
    # When the app shuts down, then Redis no longer holds a connection of it
    assert wait_until(lambda: ours() == 0, timeout=5)
    watcher.close()


def test_a_namespace_with_spaces_still_counts_in_redis(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    url = redis_url()
    require_service("Redis", reachable(url), f"{url} unreachable (set OKAERI_RATE_LIMIT_URL or BROKER_URL)")
    # Given a namespace Redis would refuse as a connection name as it is
    shop, people, product = idle_cart_shop(session, clock.now(), customers=1)
    app = _app(runtime, rate_limit_url=url, rate_limit_events_visitor="1/hour",
               redis_namespace=f"okaeri test {uuid.uuid4().hex[:8]}")
    with TestClient(app) as client:
        answers = [client.post(f"/events/colorme/{shop.event_key}", json=_view(people[0], product)).status_code
                   for _ in range(2)]
    # Then the limit is counted there (a refused connection would let every event through)
    assert answers == [202, 429]
