"""The sandbox's install lifecycle beyond the hooks: a merchant withdrawing the app's permission
(every call with its token answers 401 401010 from then on, as ColorMe does for a revoked or
uninstalled app), and the App Store API's checks on a script tag's body."""
from __future__ import annotations

import base64
import binascii
import html
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

__all__ = ["add_lifecycle_routes", "script_tag_problem", "DISPLAY_SCOPES"]

DISPLAY_SCOPES = ("shop", "thanks_page")  # the current script-tag API's scopes


def script_tag_problem(tag: dict[str, Any]) -> str | None:
    """Why ColorMe would refuse this `script_tag` body (a scope it does not have, an integrity
    that is not SRI sha384), or None."""
    if tag.get("display_scope", "shop") not in DISPLAY_SCOPES:
        return f"display_scope は {' / '.join(DISPLAY_SCOPES)} のいずれかです"
    integrity = tag.get("integrity")
    if integrity is None:
        return None
    algorithm, _, digest = str(integrity).partition("-")
    try:
        valid = algorithm == "sha384" and len(base64.b64decode(digest, validate=True)) == 48
    except (binascii.Error, ValueError):
        valid = False
    return None if valid else "integrity は sha384-<base64> の形式で指定してください"


def add_lifecycle_routes(app: FastAPI, config: Any) -> None:
    """`POST /admin/revoke`: the merchant removes Okaeri from 許可済みアプリケーション一覧. Its
    tokens stop working at once; the app stays installed and its script tags stay."""

    @app.post("/admin/revoke", response_class=HTMLResponse)
    def revoke() -> HTMLResponse:
        revoked = len(config.tokens)
        config.tokens.clear()
        config.save()
        return HTMLResponse(f"<!doctype html><meta charset='utf-8'><p>アプリの許可を取り消しました"
                            f"（{html.escape(str(revoked))} 件のアクセストークン）</p>")
