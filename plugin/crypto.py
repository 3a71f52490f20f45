"""Token encryption at rest and signed values (unsubscribe links, sessions, OAuth state).

A value that fails its check raises `BadSignature`, the one class for every signature Okaeri
checks (inbound hooks raise it too); it is re-exported here for the callers of `Signer`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac

import itsdangerous
from cryptography.fernet import Fernet, InvalidToken
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer

from connectors.errors import BadSignature
from connectors.signatures import same_secret

__all__ = ["TokenCipher", "Signer", "BadSignature"]


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
        self._plain: dict[str, URLSafeSerializer] = {}
        self._timed: dict[str, URLSafeTimedSerializer] = {}
        self._macs: dict[str, hmac.HMAC] = {}

    def dumps(self, value: object, purpose: str) -> str:
        return self._serializer(purpose).dumps(value)

    def loads(self, token: str, purpose: str) -> object:
        """Return the signed value; raise BadSignature if tampered with."""
        try:
            return self._serializer(purpose).loads(token)
        except itsdangerous.BadSignature as exc:
            raise BadSignature(f"{purpose} value does not verify") from exc

    def dumps_timed(self, value: object, purpose: str) -> str:
        return self._timed_serializer(purpose).dumps(value)

    def loads_timed(self, token: str, purpose: str, max_age: int) -> object:
        """Return the signed value if younger than max_age seconds; else BadSignature."""
        try:
            return self._timed_serializer(purpose).loads(token, max_age=max_age)
        except itsdangerous.BadSignature as exc:
            raise BadSignature(f"{purpose} value does not verify or has expired") from exc

    def mac(self, text: str, purpose: str) -> str:
        """A short URL-safe tag (128-bit HMAC-SHA256) over text: cheap enough for every link of every mail."""
        keyed = self._macs.get(purpose)
        if keyed is None:
            keyed = self._macs[purpose] = hmac.new(_derive(self._secret, f"mac:{purpose}"), digestmod=hashlib.sha256)
        tag = keyed.copy()
        tag.update(text.encode())
        return base64.urlsafe_b64encode(tag.digest()[:16]).rstrip(b"=").decode()

    def verify_mac(self, text: str, tag: str, purpose: str) -> bool:
        """Constant-time check of a tag made by `mac`."""
        return same_secret(self.mac(text, purpose), tag)

    def _serializer(self, purpose: str) -> URLSafeSerializer:
        if purpose not in self._plain:
            self._plain[purpose] = URLSafeSerializer(self._secret, salt=purpose)
        return self._plain[purpose]

    def _timed_serializer(self, purpose: str) -> URLSafeTimedSerializer:
        if purpose not in self._timed:
            self._timed[purpose] = URLSafeTimedSerializer(self._secret, salt=purpose)
        return self._timed[purpose]

