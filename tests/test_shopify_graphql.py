"""The GraphQL Admin client (issue 15 item 4): a throttled answer slows the sync instead of failing
it — THROTTLED on HTTP 200 waits for the bucket to restore, 429 waits Retry-After, 5xx backs off —
and a refusal for protected customer data is a state the console can show, not a retry loop."""
from __future__ import annotations

import httpx
import pytest
import respx

from connectors.errors import BadResponse, ProviderDown, Unauthorized
from connectors.shopify.graphql import API_VERSION, AccessDenied, GraphQLClient

SHOP = "tokyo-tea.myshopify.com"
URL = f"https://{SHOP}/admin/api/{API_VERSION}/graphql.json"


def _cost(available: float, requested: float = 10.0, maximum: float = 2000.0, restore: float = 100.0) -> dict:
    return {"cost": {"requestedQueryCost": requested, "actualQueryCost": requested,
                     "throttleStatus": {"maximumAvailable": maximum, "currentlyAvailable": available,
                                        "restoreRate": restore}}}


class FakeClock:
    def __init__(self) -> None:
        self.now, self.sleeps = 1000.0, []  # type: ignore[var-annotated]

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def _client(clock: FakeClock, token: str = "shpat_1") -> GraphQLClient:
    return GraphQLClient(SHOP, lambda: token, sleep=clock.sleep, clock=clock)


@respx.mock
def test_a_query_carries_the_token_on_the_pinned_version_and_returns_its_data() -> None:
    route = respx.post(URL).respond(200, json={"data": {"shop": {"name": "東京茶舗"}}, "extensions": _cost(1990)})
    client = _client(FakeClock())
    assert client.query("{ shop { name } }") == {"shop": {"name": "東京茶舗"}}
    assert route.calls.last.request.headers["X-Shopify-Access-Token"] == "shpat_1"
    assert client.throttle is not None and client.throttle.available == 1990


@respx.mock
def test_throttled_on_http_200_waits_for_the_restore_and_then_succeeds() -> None:
    throttled = {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                 "extensions": _cost(available=50, requested=550)}
    respx.post(URL).mock(side_effect=[httpx.Response(200, json=throttled),
                                      httpx.Response(200, json={"data": {"ok": 1}, "extensions": _cost(0)})])
    clock = FakeClock()
    assert _client(clock).query("{ orders { id } }", expected_cost=100) == {"ok": 1}
    assert clock.sleeps == [5.0]  # (550 - 50) points at 100 points/s


@respx.mock
def test_the_client_waits_before_a_query_the_bucket_cannot_pay_for() -> None:
    respx.post(URL).mock(side_effect=[httpx.Response(200, json={"data": {}, "extensions": _cost(available=20)}),
                                      httpx.Response(200, json={"data": {}, "extensions": _cost(available=0)})])
    clock = FakeClock()
    client = _client(clock)
    client.query("{ a }")
    client.query("{ b }", expected_cost=220)
    assert clock.sleeps == [2.0] and client.waited == 2.0


@respx.mock
def test_a_429_waits_retry_after_and_a_5xx_backs_off() -> None:
    respx.post(URL).mock(side_effect=[httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(503),
                                      httpx.ReadTimeout("slow"), httpx.Response(200, json={"data": {"ok": 1}})])
    clock = FakeClock()
    assert _client(clock).query("{ a }") == {"ok": 1}
    assert clock.sleeps == [3.0, 0.5, 1.0]


@respx.mock
def test_a_shop_that_stays_down_is_reported_after_the_retries() -> None:
    respx.post(URL).respond(502)
    with pytest.raises(ProviderDown):
        _client(FakeClock()).query("{ a }")


@respx.mock
@pytest.mark.parametrize("answer", [
    httpx.Response(403, text="This app is not approved to access the Customer object."),
    httpx.Response(200, json={"errors": [{"message": "Access denied for customers field.",
                                          "extensions": {"code": "ACCESS_DENIED"}}]}),
])
def test_protected_customer_data_not_approved_is_access_denied_not_a_retry(answer: httpx.Response) -> None:
    route = respx.post(URL).mock(return_value=answer)
    with pytest.raises(AccessDenied):
        _client(FakeClock()).query("{ customers(first: 1) { nodes { email } } }")
    assert route.call_count == 1


@respx.mock
def test_a_revoked_token_is_unauthorized_and_other_errors_are_bad_responses() -> None:
    respx.post(URL).mock(side_effect=[httpx.Response(401, json={"errors": "Invalid API key or access token"}),
                                      httpx.Response(200, json={"errors": [{"message": "Field 'x' doesn't exist"}]})])
    client = _client(FakeClock())
    with pytest.raises(Unauthorized):
        client.query("{ a }")
    with pytest.raises(BadResponse, match="doesn't exist"):
        client.query("{ x }")
