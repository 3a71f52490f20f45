"""Activating the web pixel on one shop: `webPixelCreate` with the shop's event URL as its settings.

Shopify validates the settings against `pixel/shopify.extension.toml` (one field, `eventUrl`). An app
has one pixel per shop: when one exists already (a reinstall, a retried install) Shopify answers
`TAKEN`: the app's pixel is then looked up (`webPixel` query) and updated in place with
`webPixelUpdate`. Install calls `activate_pixel` once the shop's token works (scopes `write_pixels`
and `read_customer_events`); calling it again (reinstall, a new event key) is harmless.
"""
from __future__ import annotations

import json
from typing import Any

from connectors.errors import BadResponse
from connectors.shopify.graphql import GraphQLClient

__all__ = ["activate_pixel", "pixel_settings", "CREATE", "UPDATE", "CURRENT"]

PLATFORM = "shopify"
CREATE = """mutation($webPixel: WebPixelInput!) {
  webPixelCreate(webPixel: $webPixel) { webPixel { id settings } userErrors { field message code } }
}"""
UPDATE = """mutation($id: ID!, $webPixel: WebPixelInput!) {
  webPixelUpdate(id: $id, webPixel: $webPixel) { webPixel { id settings } userErrors { field message code } }
}"""

CURRENT = "{ webPixel { id settings } }"  # the app's own pixel on this shop


def pixel_settings(event_url: str) -> str:
    """The settings JSON string `WebPixelInput.settings` takes."""
    if not event_url.startswith("https://") and not event_url.startswith("http://127.0.0.1"):
        raise ValueError("the pixel's event URL must be https (or the local sandbox)")
    return json.dumps({"eventUrl": event_url})


def activate_pixel(client: GraphQLClient, event_url: str, pixel_id: str = "") -> str:
    """Create the shop's web pixel, or update it in place when it exists (by `pixel_id`, else the one
    Shopify reports for the app); returns its id.

    Raises:
      BadResponse: With Shopify's user errors (e.g. settings the extension does not declare).
    """
    variables = {"webPixel": {"settings": pixel_settings(event_url)}}
    if not pixel_id:
        answer = client.query(CREATE, variables).get("webPixelCreate") or {}
        if not _codes(answer) or "TAKEN" not in _codes(answer):
            return _pixel_id(answer)
        pixel_id = str(((client.query(CURRENT).get("webPixel")) or {}).get("id") or "")
        if not pixel_id:
            raise BadResponse("Shopify says the web pixel exists but reports none", platform=PLATFORM, status=409)
    return _pixel_id(client.query(UPDATE, {"id": pixel_id, **variables}).get("webPixelUpdate") or {})


def _codes(answer: dict[str, Any]) -> str:
    return ", ".join(str(e.get("code") or e.get("message")) for e in answer.get("userErrors") or [])


def _pixel_id(answer: dict[str, Any]) -> str:
    if codes := _codes(answer):
        raise BadResponse(f"Shopify refused the web pixel: {codes}", platform=PLATFORM, status=400)
    pixel = answer.get("webPixel") or {}
    if not pixel.get("id"):
        raise BadResponse("Shopify's web pixel answer has no id", platform=PLATFORM)
    return str(pixel["id"])
