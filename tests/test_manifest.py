"""The store manifest must describe what the code actually serves."""
from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from connectors.colorme.oauth import SCOPES
from plugin.web.app import create_app
from scenarios import SCENARIOS
from tests.factories import make_shop

MANIFEST = json.loads((Path(__file__).parent.parent / "manifest.json").read_text(encoding="utf-8"))


def _paths(runtime) -> set[str]:  # type: ignore[no-untyped-def]
    return set(create_app(runtime).openapi()["paths"])


def test_manifest_has_japanese_and_english_description() -> None:
    assert MANIFEST["description"]["ja"] and MANIFEST["description"]["en"]


def test_colorme_scopes_are_the_ones_oauth_requests() -> None:
    assert MANIFEST["platforms"]["colorme"]["scopes"] == list(SCOPES)


def test_every_colorme_url_in_the_manifest_is_served(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    # Given the app, and a shop whose key the event endpoint can name
    colorme, client = MANIFEST["platforms"]["colorme"], TestClient(create_app(runtime))
    shop = make_shop(session, clock.now())
    # When each manifest URL is called as the platform or a browser would, unsigned or without a session
    # Then each reaches its handler (the platform's routes are resolved through the registry)
    assert client.post(colorme["install_hook"], content=b"{}").status_code == 401
    assert client.post(colorme["uninstall_hook"], content=b"{}").status_code == 401
    for callback in colorme["redirect_urls"]:
        assert "OAuth session" in client.get(callback).json()["detail"]
    script = client.get(colorme["script_tag"])
    assert script.status_code == 200 and "sendBeacon" in script.text
    event_url = colorme["event_endpoint"].replace("{event_key}", shop.event_key)
    assert client.post(event_url, content=b"{not json").json()["error"].startswith("invalid event")
    assert set(MANIFEST["pages"].values()) <= _paths(runtime)


def test_urls_of_a_platform_nobody_registered_are_404(runtime) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(create_app(runtime))
    assert client.post("/nosuch/hooks/install", content=b"{}").status_code == 404
    assert client.get("/nosuch/oauth/start?account_id=x").status_code == 404
    assert client.get("/storefront/nosuch.js").status_code == 404
    assert client.post("/events/nosuch/key", content=b"{}").status_code == 404
    assert client.post("/colorme/hooks/nosuch", content=b"{}").status_code == 404


def test_scenario_catalog_matches_the_presets() -> None:
    catalog = {s["key"]: s for s in MANIFEST["scenarios"]}
    assert set(catalog) == set(SCENARIOS)
    for key, scenario in SCENARIOS.items():
        assert catalog[key]["name"] == {"ja": scenario.name_ja, "en": scenario.name_en}
        assert catalog[key]["channels"] == list(scenario.channels)
