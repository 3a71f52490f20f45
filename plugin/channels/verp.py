"""VERP: each mail's envelope sender names its outbox row, signed, so a bounce finds its message.

    bounces+<row id>-<tag>@<bounce domain>      tag = 128-bit HMAC of the id, lower-case hex

Anyone can send mail to the bounce domain, and outbox ids are small integers: without the tag a
stranger could suppress any customer by "bouncing" ids in turn. The tag is lower-case hex because
some systems fold local parts to lower case; it stays under the 64 octets RFC 5321 allows a local part.
The same reference travels in the mail's X-Okaeri-Ref header, for reports (ARF complaints) that
come back to another address with the original attached.
"""
from __future__ import annotations

import base64
import binascii
import re

from plugin.crypto import Signer
from plugin.settings import Settings

__all__ = ["ReturnPath", "REF_HEADER", "LOCAL_PART"]

LOCAL_PART = "bounces"
REF_HEADER = "X-Okaeri-Ref"
_PURPOSE = "verp"
_REF = re.compile(r"(\d{1,18})-([0-9a-f]{32})")
_ADDRESS = re.compile(rf"{LOCAL_PART}\+(\d{{1,18}}-[0-9a-f]{{32}})@", re.IGNORECASE)


class ReturnPath:
    """Makes and checks the signed references of one bounce domain."""

    def __init__(self, signer: Signer, domain: str) -> None:
        self.signer = signer
        self.domain = domain.lower()

    @classmethod
    def from_settings(cls, settings: Settings) -> ReturnPath | None:
        """VERP of OKAERI_BOUNCE_DOMAIN, or None when it is not set."""
        if not settings.bounce_domain:
            return None
        return cls(Signer(settings.secret_key, settings.previous_secret_key_list), settings.bounce_domain)

    def ref(self, outbox_id: int) -> str:
        """`<id>-<tag>`: what the envelope sender and the X-Okaeri-Ref header carry."""
        return f"{outbox_id}-{self._tag(outbox_id)}"

    def address(self, ref: str) -> str:
        return f"{LOCAL_PART}+{ref}@{self.domain}"

    def outbox_id(self, ref: str) -> int | None:
        """The row a reference names, or None when it is malformed or its tag does not verify (under
        the current secret key or a previous one: a bounce may come days after a key rotation)."""
        match = _REF.fullmatch(ref.strip().lower())
        if match is None:
            return None
        try:
            tag = base64.urlsafe_b64encode(binascii.unhexlify(match.group(2))).rstrip(b"=").decode()
        except binascii.Error:
            return None
        outbox_id = int(match.group(1))
        return outbox_id if self.signer.verify_mac(str(outbox_id), tag, _PURPOSE) else None

    def ref_of_address(self, address: str) -> str | None:
        """The reference in a VERP address (`bounces+<ref>@…`), unchecked; None for any other address."""
        match = _ADDRESS.search(address)
        return match.group(1).lower() if match else None

    def is_ours(self, address: str) -> bool:
        """The address is at the bounce domain (any local part: FBL reports come to another one)."""
        return address.rsplit("@", 1)[-1].strip(" <>").lower() == self.domain

    def _tag(self, outbox_id: int) -> str:
        mac = self.signer.mac(str(outbox_id), _PURPOSE)
        return base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4)).hex()
