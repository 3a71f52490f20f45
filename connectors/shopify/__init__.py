"""Shopify (the second platform plug-in, issue 15) — built so far: the trust boundary.

- `shop_domain`: the `*.myshopify.com` identity every request names.
- `query_hmac`: the install/OAuth-callback query signature (hex HMAC, 90 s timestamp window).
- `session_token`: App Bridge session tokens for the embedded admin (HS256 JWT, aud/exp/nbf/dest).
- `webhook_delivery`: `X-Shopify-Hmac-Sha256` on the raw body, then the delivery's headers.
- `oauth`: code grant, token exchange and refresh of expiring offline tokens.
- `graphql`: the one GraphQL door (pinned version, cost throttling, THROTTLED/429/5xx handling).
- `queries`, `connector`: first sync by bulk operation, incremental by paged queries.
- `bulk` and `mapping`: a bulk operation's grouped JSONL read as a stream into neutral records.

- `config`, `platform`: the descriptor (`PLATFORM`, entry point `shopify` in `okaeri.platforms`):
  Shopify-managed install, token exchange / code grant, expiring tokens, the embedded admin's
  session tokens, `app/uninstalled`, and the seam to the webhook processing (`webhook_topics`).

Not yet: the webhook endpoint and its processing, points metafields, the web pixel.
"""
from __future__ import annotations

from connectors.shopify.platform import ShopifyPlatform

__all__ = ["PLATFORM"]

PLATFORM = ShopifyPlatform()
