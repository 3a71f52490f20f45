"""ColorMe App-store install/uninstall hooks: verified on raw bytes, then parsed."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from connectors.errors import BadResponse, BadSignature
from plugin.crypto import verify_hmac_b64

__all__ = ["InstallHook", "UninstallHook", "parse_install", "parse_uninstall", "SIGNATURE_HEADER"]

SIGNATURE_HEADER = "X-Appstore-Signature"
ACCOUNT_ID = re.compile(r"^PA\d{8}$")


@dataclass(frozen=True)
class InstallHook:
    account_id: str
    owner_email: str


@dataclass(frozen=True)
class UninstallHook:
    account_id: str
    uninstalled_at: int
    reason: str


def _verified_json(secret: str, body: bytes, signature: str | None) -> dict[str, object]:
    if not verify_hmac_b64(secret, body, signature):
        raise BadSignature("X-Appstore-Signature does not match the body", platform="colorme")
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise BadResponse("hook body is not JSON", platform="colorme") from exc
    if not isinstance(data, dict) or not ACCOUNT_ID.match(str(data.get("account_id", ""))):
        raise BadResponse("hook body has no valid account_id (PA + 8 digits)", platform="colorme")
    return data


def parse_install(secret: str, body: bytes, signature: str | None) -> InstallHook:
    data = _verified_json(secret, body, signature)
    return InstallHook(account_id=str(data["account_id"]), owner_email=str(data.get("mail") or ""))


def parse_uninstall(secret: str, body: bytes, signature: str | None) -> UninstallHook:
    data = _verified_json(secret, body, signature)
    try:
        uninstalled_at = int(data.get("uninstalled_at") or 0)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise BadResponse("uninstalled_at is not a unix time", platform="colorme") from exc
    return UninstallHook(
        account_id=str(data["account_id"]),
        uninstalled_at=uninstalled_at,
        reason=str(data.get("reason") or ""),
    )
