"""Token encryption at rest and signed values (unsubscribe links, sessions, OAuth state)."""
from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer

__all__ = ["TokenCipher", "Signer", "BadSignature", "hmac_sha256_b64", "verify_hmac_b64"]


def _derive(secret_key: str, purpose: str) -> bytes:
    return hashlib.sha256(f"{purpose}:{secret_key}".encode()).digest()


class TokenCipher:
    """Encrypts platform access tokens with a key derived from OKAERI_SECRET_KEY."""

    def __init__(self, secret_key: str) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret_key, "token-encryption")))

    def encrypt(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        """Return the plain token; raise ValueError if it was not encrypted with this key."""
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("token cannot be decrypted with the configured secret key") from exc


class Signer:
    """Signs small values for links and cookies; each purpose has its own salt."""

    def __init__(self, secret_key: str) -> None:
        self._secret = secret_key

    def dumps(self, value: object, purpose: str) -> str:
        return URLSafeSerializer(self._secret, salt=purpose).dumps(value)

    def loads(self, token: str, purpose: str) -> object:
        """Return the signed value; raise BadSignature if tampered with."""
        return URLSafeSerializer(self._secret, salt=purpose).loads(token)

    def dumps_timed(self, value: object, purpose: str) -> str:
        return URLSafeTimedSerializer(self._secret, salt=purpose).dumps(value)

    def loads_timed(self, token: str, purpose: str, max_age: int) -> object:
        """Return the signed value if younger than max_age seconds; else BadSignature."""
        return URLSafeTimedSerializer(self._secret, salt=purpose).loads(token, max_age=max_age)


def hmac_sha256_b64(secret: str, body: bytes) -> str:
    """Base64 HMAC-SHA256 of raw bytes, the scheme ColorMe, Shopify webhooks and LINE use."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify_hmac_b64(secret: str, body: bytes, signature: str | None) -> bool:
    """Constant-time check of a base64 HMAC-SHA256 signature over raw bytes."""
    if not secret or not signature:
        return False
    return hmac.compare_digest(hmac_sha256_b64(secret, body), signature.strip())
