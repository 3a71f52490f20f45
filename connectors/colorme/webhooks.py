"""ColorMe App-store install/uninstall hooks: verified on raw bytes, then parsed."""
from __future__ import annotations

import re

from connectors.errors import BadResponse, BadSignature
from connectors.payloads import UnreadableJson, load_json
from connectors.platform import InstallRequested, Uninstalled
from connectors.signatures import verify_hmac_sha256_b64

__all__ = ["parse_install", "parse_uninstall", "check_account", "SIGNATURE_HEADER", "ACCOUNT_ID"]

SIGNATURE_HEADER = "X-Appstore-Signature"
LATEST_UNIX_TIME = 2**33  # year 2242: anything later is not a time ColorMe sent
ACCOUNT_ID = re.compile(r"PA[0-9]{8}")  # fullmatch: no trailing newline, no full-width digits


def check_account(account: str) -> None:
    """Refuse anything that is not a ColorMe account id (PA + 8 digits)."""
    if not ACCOUNT_ID.fullmatch(account):
        raise BadResponse("account_id must be PA followed by 8 digits", platform="colorme")


def _verified_json(secret: str, body: bytes, signature: str | None) -> dict[str, object]:
    if not verify_hmac_sha256_b64(secret, body, signature):
        raise BadSignature("X-Appstore-Signature does not match the body", platform="colorme")
    try:
        data = load_json(body)
    except UnreadableJson as exc:
        raise BadResponse(f"hook body: {exc}", platform="colorme") from None
    if not isinstance(data, dict) or not ACCOUNT_ID.fullmatch(str(data.get("account_id", ""))):
        raise BadResponse("hook body has no valid account_id (PA + 8 digits)", platform="colorme")
    return data


def parse_install(secret: str, body: bytes, signature: str | None) -> InstallRequested:
    """The install hook: the account and its owner's address."""
    data = _verified_json(secret, body, signature)
    return InstallRequested(account=str(data["account_id"]), owner_email=str(data.get("mail") or ""))


def parse_uninstall(secret: str, body: bytes, signature: str | None) -> Uninstalled:
    """The uninstall hook; its account and time make the key that spots repeats."""
    data = _verified_json(secret, body, signature)
    uninstalled_at = _unix_time(data.get("uninstalled_at") or 0)
    account = str(data["account_id"])
    return Uninstalled(account=account, delivery_key=f"uninstall:{account}:{uninstalled_at}",
                       reason=str(data.get("reason") or ""))


def _unix_time(value: object) -> int:
    """A JSON number (or its digits) as whole seconds; BadResponse for anything else."""
    try:
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            seconds = int(value)
            if 0 <= seconds <= LATEST_UNIX_TIME:
                return seconds
    except (ValueError, OverflowError):  # "x", inf (1e400), nan
        pass
    raise BadResponse("uninstalled_at is not a unix time", platform="colorme")
