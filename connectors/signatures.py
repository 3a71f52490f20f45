"""Signature schemes inbound hooks use; each is checked in constant time on the raw body."""
from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["hmac_sha256_b64", "verify_hmac_sha256_b64", "same_secret"]


def hmac_sha256_b64(secret: str, body: bytes) -> str:
    """Base64 HMAC-SHA256 of raw bytes: the scheme of ColorMe's App-store hooks, Shopify webhooks and LINE."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify_hmac_sha256_b64(secret: str, body: bytes, signature: str | None) -> bool:
    """Constant-time check of a base64 HMAC-SHA256 signature; an empty secret verifies nothing."""
    if not secret or not signature:
        return False
    return same_secret(hmac_sha256_b64(secret, body), signature.strip())


def same_secret(expected: str, given: str) -> bool:
    """Constant-time equality of two secrets compared as bytes: whatever a stranger sends (non-ASCII
    header bytes, a lone surrogate) is simply unequal, where comparing str would raise."""
    return hmac.compare_digest(expected.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass"))
