"""Activating the web pixel on one shop: `webPixelCreate` with the shop's event URL as its settings.

Shopify validates the settings against `pixel/shopify.extension.toml` (one field, `eventUrl`). An app
has one pixel per shop: when one exists already (a reinstall, a retried install) Shopify answers
`TAKEN`, and the pixel is updated in place with `webPixelUpdate` when its id is known. Install calls
`activate_pixel` once the shop's token works (scopes `write_pixels` and `read_customer_events`).
"""
from __future__ import annotations

import json

from connectors.errors import BadResponse
from connectors.shopify.graphql import GraphQLClient

__all__ = ["activate_pixel", "pixel_settings", "CREATE", "UPDATE"]

PLATFORM = "shopify"
CREATE = """mutation($webPixel: WebPixelInput!) {
  webPixelCreate(webPixel: $webPixel) { webPixel { id settings } userErrors { field message code } }
}"""
UPDATE = """mutation($id: ID!, $webPixel: WebPixelInput!) {
  webPixelUpdate(id: $id, webPixel: $webPixel) { webPixel { id settings } userErrors { field message code } }
}"""


def pixel_settings(event_url: str) -> str:
    """The settings JSON string `WebPixelInput.settings` takes."""
    if not event_url.startswith("https://") and not event_url.startswith("http://127.0.0.1"):
        raise ValueError("the pixel's event URL must be https (or the local sandbox)")
    return json.dumps({"eventUrl": event_url})


def activate_pixel(client: GraphQLClient, event_url: str, pixel_id: str = "") -> str:
    """Create (or, given its id, update) the shop's web pixel; returns its id.

    Raises:
      BadResponse: With Shopify's user errors, e.g. `TAKEN` when a pixel exists and no id was given.
    """
    variables = {"webPixel": {"settings": pixel_settings(event_url)}}
    if pixel_id:
        answer = client.query(UPDATE, {"id": pixel_id, **variables}).get("webPixelUpdate") or {}
    else:
        answer = client.query(CREATE, variables).get("webPixelCreate") or {}
    errors = answer.get("userErrors") or []
    if errors:
        codes = ", ".join(str(e.get("code") or e.get("message")) for e in errors)
        raise BadResponse(f"Shopify refused the web pixel: {codes}", platform=PLATFORM, status=409 if "TAKEN" in codes else 400)
    pixel = answer.get("webPixel") or {}
    if not pixel.get("id"):
        raise BadResponse("Shopify's web pixel answer has no id", platform=PLATFORM)
    return str(pixel["id"])
