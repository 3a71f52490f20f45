"""The one shop identity Shopify gives us before any token: its `*.myshopify.com` domain.

Every install query, OAuth callback, webhook header and session token names the shop this way;
anything else (a custom domain, `evil.com/.myshopify.com`, full-width letters, a trailing
newline) is refused before it reaches a URL we build or a row we look up.
"""
from __future__ import annotations

import re

__all__ = ["InvalidShopDomain", "parse_shop_domain", "admin_url"]

# A subdomain label as Shopify issues them: ASCII letters, digits and hyphens, 1-63 characters.
_SHOP_DOMAIN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\.myshopify\.com", re.ASCII)


class InvalidShopDomain(ValueError):
    """The value is not a `<name>.myshopify.com` domain."""


def parse_shop_domain(value: object) -> str:
    """The shop's domain in lower case, or InvalidShopDomain; a full match, ASCII only."""
    if not isinstance(value, str) or len(value) > 80:
        raise InvalidShopDomain("shop must be a <name>.myshopify.com domain")
    domain = value.lower()
    if not _SHOP_DOMAIN.fullmatch(domain):
        raise InvalidShopDomain("shop must be a <name>.myshopify.com domain")
    return domain


def admin_url(shop_domain: str, path: str) -> str:
    """An absolute URL on the shop's admin, e.g. `/admin/oauth/access_token`."""
    return f"https://{parse_shop_domain(shop_domain)}{path}"
