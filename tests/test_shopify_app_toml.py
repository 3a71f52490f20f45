"""shopify.app.toml (what Shopify CLI deploys) says what the code does and what manifest.json says:
the same scopes, the pinned API version, every topic the webhook endpoint takes, and URLs the app
actually serves."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from connectors.shopify.config import DEFAULT_SCOPES, ShopifyConfig
from connectors.shopify.graphql import API_VERSION
from connectors.shopify.webhook_delivery import COMPLIANCE_TOPICS, TOPICS
from plugin.web.app import create_app

ROOT = Path(__file__).parent.parent
APP = tomllib.loads((ROOT / "shopify.app.toml").read_text(encoding="utf-8"))
MANIFEST = json.loads((ROOT / "manifest.json").read_text(encoding="utf-8"))["platforms"]["shopify"]


def _path(url: str) -> str:
    parts = urlsplit(url)
    assert parts.scheme == "https" and parts.netloc, url  # Shopify takes absolute https URLs
    return parts.path


def _subscriptions() -> tuple[list[str], list[str], set[str]]:
    topics, compliance, uris = [], [], set()
    for subscription in APP["webhooks"]["subscriptions"]:
        topics += subscription.get("topics", [])
        compliance += subscription.get("compliance_topics", [])
        uris.add(_path(subscription["uri"]))
    return topics, compliance, uris


def test_the_scopes_are_the_ones_install_asks_for_and_the_manifest_lists() -> None:
    scopes = APP["access_scopes"]["scopes"].split(",")
    assert scopes == sorted(DEFAULT_SCOPES) == MANIFEST["scopes"]
    assert ShopifyConfig.load({}).scope_set == frozenset(scopes)
    assert APP["access_scopes"]["use_legacy_install_flow"] is False  # Shopify-managed install, token exchange


def test_the_webhooks_use_the_one_pinned_api_version() -> None:
    assert APP["webhooks"]["api_version"] == API_VERSION == MANIFEST["webhook_api_version"]


def test_every_topic_the_endpoint_takes_is_subscribed_compliance_topics_included() -> None:
    topics, compliance, uris = _subscriptions()
    assert set(compliance) == set(COMPLIANCE_TOPICS) == {"customers/data_request", "customers/redact", "shop/redact"}
    assert set(topics) | set(compliance) == set(TOPICS)
    assert len(topics) == len(set(topics)) and not set(topics) & set(compliance)
    assert topics == MANIFEST["webhook_topics"] and compliance == MANIFEST["compliance_topics"]
    assert uris == {MANIFEST["webhook_endpoint"]}


def test_the_app_and_redirect_urls_are_the_manifests_and_embedded() -> None:
    assert APP["embedded"] is True and MANIFEST["embedded"] is True
    assert _path(APP["application_url"]) == MANIFEST["application_url"]
    assert [_path(url) for url in APP["auth"]["redirect_urls"]] == MANIFEST["redirect_urls"]
    assert MANIFEST["app_config"] == "shopify.app.toml" and APP["client_id"] and APP["name"] == "Okaeri"


def test_every_url_in_the_app_configuration_is_served(runtime) -> None:  # type: ignore[no-untyped-def]
    # Called as a stranger would, unsigned, each reaches its handler and is refused there
    client = TestClient(create_app(runtime))
    launch = client.get(f"{MANIFEST['application_url']}?shop=sandbox-tea.myshopify.com&timestamp=1")
    assert launch.status_code == 400 and launch.json()["code"] == "launch_tampered"
    for callback in MANIFEST["redirect_urls"]:
        answer = client.get(f"{callback}?code=x&shop=sandbox-tea.myshopify.com&state=y")
        assert answer.status_code == 400 and answer.json()["code"] == "launch_tampered"
    hook = client.post(MANIFEST["webhook_endpoint"], content=b"{}", headers={"X-Shopify-Topic": "shop/redact"})
    assert hook.status_code == 401
