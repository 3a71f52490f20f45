"""Jinja2 environment for the app's own pages (autoescaped)."""
from __future__ import annotations

from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from plugin.web.i18n import texts

__all__ = ["render_page"]


def _local_time(value: Any, tz: str = "Asia/Tokyo") -> str:
    """Stored UTC → the shop's time zone, for display."""
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


@cache
def _env() -> Environment:
    env = Environment(loader=PackageLoader("plugin.web", "templates"), autoescape=select_autoescape(default=True))
    env.filters["local_time"] = _local_time
    return env


def render_page(name: str, lang: str, status_code: int = 200, **variables: Any) -> HTMLResponse:
    html = _env().get_template(name).render(t=texts(lang), lang=lang, **variables)
    response = HTMLResponse(html, status_code=status_code)
    response.set_cookie("lang", lang, max_age=365 * 86400, samesite="lax")
    return response
