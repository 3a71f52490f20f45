"""Message rendering: Jinja2 with autoescape for HTML, a plain-text part, ja and en."""
from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, select_autoescape

__all__ = ["render_message", "money"]

LOCALES = ("ja", "en")


def money(amount: int, currency: str = "JPY", locale: str = "ja") -> str:
    """Integer minor units → display text; JPY has no minor unit."""
    if currency == "JPY":
        return f"{amount:,}円" if locale == "ja" else f"¥{amount:,}"
    return f"{amount / 100:,.2f} {currency}"


@cache
def _environment() -> Environment:
    env = Environment(
        loader=ChoiceLoader([PackageLoader("scenarios", "templates"), PackageLoader("plugin", "templates")]),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = money
    return env


def render_message(scenario_key: str, locale: str, variables: dict[str, Any]) -> tuple[str, str, str]:
    """Render a scenario's subject, text and HTML parts in the shop's locale (ja by default)."""
    locale = locale if locale in LOCALES else "ja"
    env = _environment()
    text_template = env.get_template(f"{scenario_key}.{locale}.txt.j2")
    context = text_template.new_context({**variables, "locale": locale})
    subject = "".join(text_template.blocks["subject"](context)).strip()
    text = "".join(text_template.blocks["body"](context)).strip() + "\n"
    html = env.get_template(f"{scenario_key}.{locale}.html.j2").render(**variables, locale=locale)
    return subject, text, html
