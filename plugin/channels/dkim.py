"""DKIM signatures (RFC 6376) over the exact bytes handed to SMTP.

dkimpy canonicalizes and selects the headers; the RSA step runs in OpenSSL (`cryptography`) on a
key parsed once, because dkimpy's own pure-Python RSA costs ~6 ms a mail (bench/dkim.py), several
times the rest of a send. `dkim.verify` checks what this module signs (tests/test_email_dkim.py).
"""
from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable

import dkim
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, utils
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key
from dkim.canonicalization import CanonicalizationPolicy

from plugin.settings import Settings

__all__ = ["DkimSigner", "SIGNED_HEADERS"]

# What a receiver must see unchanged: the addresses, subject, identity, the MIME structure, and the
# RFC 8058 pair (Gmail and Yahoo require the signature to cover List-Unsubscribe and -Post).
SIGNED_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type",
                  b"list-unsubscribe", b"list-unsubscribe-post")
# Signed once more than present: a copy added in transit (a second From or unsubscribe link) breaks it.
_OVERSIGNED = (b"from", b"to", b"subject", b"list-unsubscribe", b"list-unsubscribe-post")
# Relaxed headers survive re-folding in transit. The body is simple: its parts are base64, lines
# with no whitespace to relax, and simple costs nothing where relaxed was a fifth of a signature.
_POLICY = CanonicalizationPolicy.from_c_value(b"relaxed/simple")
_PADDING = padding.PKCS1v15()
_PREHASHED = utils.Prehashed(hashes.SHA256())


class DkimSigner:
    """Signs mails for one domain and selector with one RSA key, loaded once."""

    def __init__(self, domain: str, selector: str, key_pem: bytes, now: Callable[[], float] = time.time) -> None:
        key = load_pem_private_key(key_pem, password=None)
        if not isinstance(key, RSAPrivateKey):
            raise ValueError("the DKIM key must be an RSA key")
        self._key = key
        self._now = now
        self.domain, self.selector = domain.lower(), selector
        self._fixed = b"v=1; a=rsa-sha256; c=relaxed/simple; d=" + domain.encode() + b"; s=" + selector.encode()

    @classmethod
    def from_settings(cls, settings: Settings) -> DkimSigner | None:
        """The signer of OKAERI_DKIM_*, or None when no DKIM domain is set."""
        if not settings.dkim_domain:
            return None
        return cls(settings.dkim_domain, settings.dkim_selector, settings.dkim_key_pem)

    def dns_record(self) -> str:
        """The TXT record receivers look the key up in, as a zone-file line."""
        public = self._key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return f'{self.selector}._domainkey.{self.domain}. IN TXT "v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"'

    def aligned_with(self, address: str) -> bool:
        """DMARC's relaxed alignment, roughly: the From domain is the signing domain or under it."""
        domain = address.rsplit("@", 1)[-1].lower()
        return domain == self.domain or domain.endswith("." + self.domain)

    def sign(self, raw: bytes) -> bytes:
        """`raw` (CRLF lines, as sent) with a DKIM-Signature header in front."""
        end = raw.find(b"\r\n\r\n")
        if end < 0:
            raise ValueError("a mail to sign needs a blank line between its header and its body")
        headers, _ = dkim.rfc822_parse(raw[:end + 2])  # only the header block is split into fields
        body = raw[end + 4:]
        present = [name.lower() for name, _ in headers if name.lower() in SIGNED_HEADERS]
        signed = present + [name for name in _OVERSIGNED if name in present]
        body_hash = base64.b64encode(hashlib.sha256(_POLICY.canonicalize_body(body)).digest())
        value = (b" " + self._fixed + b"; t=" + str(int(self._now())).encode() + b";\r\n\th=" + b":".join(signed)
                 + b";\r\n\tbh=" + body_hash + b";\r\n\tb=")
        digest = hashlib.sha256()
        dkim.hash_headers(digest, _POLICY, _POLICY.canonicalize_headers(headers), signed, (b"DKIM-Signature", value), {})
        signature = base64.b64encode(self._key.sign(digest.digest(), _PADDING, _PREHASHED))
        return b"DKIM-Signature:" + value + signature + b"\r\n" + raw
