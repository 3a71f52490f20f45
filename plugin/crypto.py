"""Token encryption at rest and signed values (unsubscribe links, sessions, OAuth state).

A value that fails its check raises `BadSignature` (this module's own: the bottom layer imports
nothing of the connectors; an inbound hook's bad HMAC is `connectors.errors.BadSignature`).

Key rotation: both classes take the current secret key and the previous ones
(`OKAERI_PREVIOUS_SECRET_KEYS`). They sign and encrypt with the current key only and accept
what any listed key made, so links already mailed keep working while the old key stays listed.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

import itsdangerous
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer

__all__ = ["TokenCipher", "Signer", "BadSignature", "same_secret"]


class BadSignature(Exception):
    """A value Okaeri signed (a link, a session, a form token, an OAuth state) did not verify."""


def same_secret(expected: str, given: str) -> bool:
    """Constant-time equality of two secrets compared as bytes: whatever a stranger sends (non-ASCII
    bytes, a lone surrogate) is simply unequal, where comparing str would raise."""
    return hmac.compare_digest(expected.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass"))


def _derive(secret_key: str, purpose: str) -> bytes:
    return hashlib.sha256(f"{purpose}:{secret_key}".encode()).digest()


def _fernet(secret_key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_derive(secret_key, "token-encryption")))


class TokenCipher:
    """Encrypts platform access tokens with a key derived from OKAERI_SECRET_KEY.

    Tokens encrypted under a previous key still decrypt; `rotate` re-encrypts one under the
    current key (`okaeri rotate-secrets` does it for every stored token)."""

    def __init__(self, secret_key: str, previous_keys: Sequence[str] = ()) -> None:
        self._fernet = MultiFernet([_fernet(key) for key in (secret_key, *previous_keys)])

    def encrypt(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        """Return the plain token; raise ValueError if no configured key encrypted it."""
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("token cannot be decrypted with the configured secret key") from exc

    def rotate(self, ciphertext: str) -> str:
        """The same token encrypted under the current key; raise ValueError as `decrypt` does."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("token cannot be decrypted with the configured secret key") from exc


class Signer:
    """Signs small values for links and cookies; each purpose has its own salt."""

    def __init__(self, secret_key: str, previous_keys: Sequence[str] = ()) -> None:
        self._secret = secret_key
        self._previous = tuple(previous_keys)
        # itsdangerous signs with the last key of a list and accepts any of them.
        self._keys = [*reversed(self._previous), secret_key]
        self._old_signers = tuple(Signer(key) for key in self._previous)
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
        """Constant-time check of a tag made by `mac` under the current or a previous key."""
        if same_secret(self.mac(text, purpose), tag):
            return True
        return any(old.verify_mac(text, tag, purpose) for old in self._old_signers)

    def _serializer(self, purpose: str) -> URLSafeSerializer:
        if purpose not in self._plain:
            self._plain[purpose] = URLSafeSerializer(self._keys, salt=purpose)
        return self._plain[purpose]

    def _timed_serializer(self, purpose: str) -> URLSafeTimedSerializer:
        if purpose not in self._timed:
            self._timed[purpose] = URLSafeTimedSerializer(self._keys, salt=purpose)
        return self._timed[purpose]

