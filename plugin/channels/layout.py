"""Message rendering: a preset's copy (merchant-editable, rendered in a sandbox) inside the
shared layout (Jinja2, autoescaped HTML with inline CSS plus a plain-text part), ja and en."""
from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, Template, TemplateSyntaxError, select_autoescape
from jinja2.exceptions import SecurityError, UndefinedError
from markupsafe import Markup, escape

from plugin.channels.copy_errors import CopyError
from plugin.channels.sandbox import BoundedSandbox, compile_bounded, make_sandbox, render_bounded

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
def _sandbox() -> BoundedSandbox:
    return make_sandbox({"money": money})


@lru_cache(maxsize=1024)  # merchants' templates: bounded, unlike the layout's few files
def _compiled(source: str) -> Template:
    return compile_bounded(_sandbox(), source)


def render_copy(source: str, variables: dict[str, Any]) -> str:
    """Render one piece of copy within its budget (steps, time, sizes; see `sandbox`); raise
    CopyError with a kind for bad syntax, unsafe access, an impossible value or runaway cost."""
    if "{" not in source and len(source) <= MAX_COPY_CHARS:
        return source.strip()  # plain text: nothing to render (most headlines)
    try:
        return render_bounded(_compiled(source), variables, MAX_COPY_CHARS).strip()
    except CopyError:
        raise
    except Exception as exc:  # anything a sandboxed template raises is the template's failure, not ours
        raise _copy_error(exc) from exc


def _copy_error(exc: Exception) -> CopyError:
    """A template's exception as a CopyError of the right kind (nothing of it reaches a page as is)."""
    if isinstance(exc, TemplateSyntaxError):
        return CopyError("syntax", f"syntax error: {exc.message}", line=exc.lineno)
    if isinstance(exc, SecurityError):
        return CopyError("unsafe", f"unsafe: {exc}")
    if isinstance(exc, UndefinedError):
        names = _QUOTED.findall(str(exc))
        return CopyError("unknown_variable", f"undefined: {exc}", name=names[-1] if names else "")
    if isinstance(exc, ZeroDivisionError):
        return CopyError("division_by_zero", "division by zero")
    if isinstance(exc, RecursionError | MemoryError | OverflowError):
        return CopyError("too_much_work", f"{type(exc).__name__}: {exc}")
    return CopyError("error", f"{type(exc).__name__}: {exc}")


_QUOTED = re.compile(r"'([A-Za-z_][A-Za-z0-9_]{0,40})'")


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
