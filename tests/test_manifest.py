"""The store manifest must describe what the code actually serves."""
from __future__ import annotations

import json
from pathlib import Path

from connectors.colorme.oauth import SCOPES
from plugin.web.app import create_app
from scenarios import SCENARIOS

MANIFEST = json.loads((Path(__file__).parent.parent / "manifest.json").read_text(encoding="utf-8"))


def _paths(runtime) -> set[str]:  # type: ignore[no-untyped-def]
    return set(create_app(runtime).openapi()["paths"])


def test_manifest_has_japanese_and_english_description() -> None:
    assert MANIFEST["description"]["ja"] and MANIFEST["description"]["en"]


def test_colorme_scopes_are_the_ones_oauth_requests() -> None:
    assert MANIFEST["platforms"]["colorme"]["scopes"] == list(SCOPES)


def test_every_colorme_url_in_the_manifest_is_served(runtime) -> None:  # type: ignore[no-untyped-def]
    colorme = MANIFEST["platforms"]["colorme"]
    wanted = {*colorme["redirect_urls"], colorme["install_hook"], colorme["uninstall_hook"],
              colorme["script_tag"], colorme["event_endpoint"], *MANIFEST["pages"].values()}
    assert wanted <= _paths(runtime)


def test_scenario_catalog_matches_the_presets() -> None:
    catalog = {s["key"]: s for s in MANIFEST["scenarios"]}
    assert set(catalog) == set(SCENARIOS)
    for key, scenario in SCENARIOS.items():
        assert catalog[key]["name"] == {"ja": scenario.name_ja, "en": scenario.name_en}
        assert catalog[key]["channels"] == list(scenario.channels)
