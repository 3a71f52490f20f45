"""Message rendering: a preset's copy (merchant-editable, rendered in a sandbox) inside the
shared layout (Jinja2, autoescaped HTML with inline CSS plus a plain-text part), ja and en."""
from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, Template, TemplateError, select_autoescape
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

__all__ = ["render_message", "render_copy", "money", "CopyError", "MAX_COPY_CHARS"]

LOCALES = ("ja", "en")
MAX_COPY_CHARS = 5000
WORDS = {
    "ja": {"more": "こちらもおすすめです", "contact": "お問い合わせ", "unsubscribe": "配信停止はこちら",
           "why": "このメールは、メールマガジンの受信を許可されたお客様にお送りしています。", "few_left": "残りわずか",
           "unsubscribe_text": "配信停止"},
    "en": {"more": "You may also like", "contact": "Contact", "unsubscribe": "Unsubscribe",
           "why": "You receive this because you agreed to receive news from this shop.", "few_left": "Only a few left",
           "unsubscribe_text": "Unsubscribe"},
}


class CopyError(ValueError):
    """A merchant's subject or body template that cannot be rendered; the message says why."""


def money(amount: int, currency: str = "JPY", locale: str = "ja") -> str:
    """Integer minor units → display text; JPY has no minor unit."""
    if currency == "JPY":
        return f"{amount:,}円" if locale == "ja" else f"¥{amount:,}"
    return f"{amount / 100:,.2f} {currency}"


class _LayoutEnvironment(Environment):
    """Our own layout templates read template variables, which are plain dicts: `item.name` looks
    up the key first instead of failing an attribute lookup on every use (~50 per mail)."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


@cache
def _layout() -> Environment:
    env = _LayoutEnvironment(
        loader=ChoiceLoader([PackageLoader("scenarios", "templates"), PackageLoader("plugin.channels", "templates")]),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        auto_reload=False,  # package files do not change under a running worker; the check was two stat() calls per mail
    )
    env.filters["money"] = money
    env.filters["nl2br"] = lambda text: Markup("<br>").join(escape(text).split("\n"))
    return env


@cache
def _frame(name: str) -> Template:
    """A layout template, looked up once per process (not through the loader's cache per mail)."""
    return _layout().get_template(name)


@cache
def _sandbox() -> SandboxedEnvironment:
    """For copy a merchant can edit: no access to internals, no autoescape (escaped by the layout)."""
    env = SandboxedEnvironment(autoescape=False)
    env.filters["money"] = money
    return env


@cache
def _compiled(source: str) -> Any:
    return _sandbox().from_string(source)


def render_copy(source: str, variables: dict[str, Any]) -> str:
    """Render one piece of copy; raise CopyError for bad syntax, unsafe access or runaway output."""
    if "{" not in source and len(source) <= MAX_COPY_CHARS:
        return source.strip()  # plain text: nothing to render (most headlines)
    try:
        text = _compiled(source).render(**variables)
    except TemplateError as exc:
        raise CopyError(f"template error: {exc}") from exc
    if len(text) > MAX_COPY_CHARS:
        raise CopyError(f"rendered text is longer than {MAX_COPY_CHARS} characters")
    return text.strip()


def render_message(copy: Any, locale: str, variables: dict[str, Any], *, subject: str | None = None,
                   intro: str | None = None, link: Callable[[str], str] = lambda url: url,
                   pixel_url: str = "") -> tuple[str, str, str]:
    """(subject, text, html) of one message; `link` wraps every product and call-to-action URL."""
    locale = locale if locale in LOCALES else "ja"
    words = {"subject": render_copy(subject or copy.subject, variables),
             "headline": render_copy(copy.headline, variables), "intro": render_copy(intro or copy.intro, variables),
             "cta": copy.cta, "items_title": copy.items_title}
    wrapped: dict[str, str] = {}

    def link_once(url: str) -> str:  # the text and HTML parts link the same URLs: sign each once
        if url not in wrapped:
            wrapped[url] = link(url)
        return wrapped[url]

    context = {**variables, **words, "locale": locale, "w": WORDS[locale], "link": link_once, "pixel_url": pixel_url}
    text = _frame("standard.txt.j2").render(context).strip() + "\n"
    html = _frame("standard.html.j2").render(context)
    return words["subject"], text, html
