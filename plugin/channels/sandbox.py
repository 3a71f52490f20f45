"""The sandbox for copy a merchant can edit: Jinja2's immutable sandbox with a bounded cost.

Every way a template can do work goes through a budget: each loop step (every `for` is
rewritten to iterate through a counting filter), each call, each arithmetic operation. The
budget has a step count and a deadline; ranges, repeated strings, exponents and every value a
template builds have a size cap; output stops as soon as it passes its cap. A template that
goes past any of them raises `CopyError` with a kind the console explains in the merchant's
language.
"""
from __future__ import annotations

import operator
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from functools import wraps
from typing import Any

from jinja2 import Template, nodes
from jinja2.defaults import DEFAULT_FILTERS
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from plugin.channels.copy_errors import CopyError

__all__ = ["BoundedSandbox", "make_sandbox", "compile_bounded", "render_bounded", "Budget", "MAX_STEPS", "MAX_RANGE", "MAX_VALUE_CHARS",
           "MAX_INT_BITS", "MAX_SOURCE_CHARS", "RENDER_SECONDS"]

MAX_STEPS = 20_000  # loop steps, calls and operations of one rendering
MAX_RANGE = 1_000  # numbers in one range()
MAX_VALUE_CHARS = 20_000  # any string or list a template builds on the way
MAX_INT_BITS = 256  # about 77 digits: more than any price or point balance
MAX_SOURCE_CHARS = 10_000
RENDER_SECONDS = 0.5

_ARITHMETIC = frozenset(["+", "-", "*", "/", "//", "%", "**"])
_STR_METHODS = frozenset([
    "capitalize", "casefold", "center", "count", "endswith", "find", "index", "isalnum", "isalpha", "isdigit",
    "islower", "isnumeric", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip", "partition",
    "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip",
    "split", "splitlines", "startswith", "strip", "swapcase", "title", "upper", "zfill",
])  # no format/format_map (a width of 10**9 is one call), no expandtabs, encode, translate
_FILTERS = (
    "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape", "first",
    "float", "forceescape", "groupby", "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min",
    "reject", "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "slice", "sort", "string",
    "striptags", "sum", "title", "trim", "truncate", "unique", "upper", "urlencode", "wordcount", "wordwrap",
)  # left out: format, indent, pprint, random, tojson, urlize, xmlattr, filesizeformat
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\d+|\*)?(?:\.(\d+|\*))?")


class Budget:
    """What one rendering may still spend: steps and time."""

    __slots__ = ("steps", "deadline")

    def __init__(self, seconds: float) -> None:
        self.steps = 0
        self.deadline = time.monotonic() + seconds

    def spend(self, steps: int = 1) -> None:
        self.steps += steps
        if self.steps > MAX_STEPS:
            raise CopyError("too_much_work", f"more than {MAX_STEPS:,} loop steps, calls or operations")
        if time.monotonic() > self.deadline:
            raise CopyError("too_slow", "rendering took longer than its time budget")


_BUDGET: ContextVar[Budget | None] = ContextVar("okaeri_copy_budget", default=None)


def _spend(steps: int = 1) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.spend(steps)


def _check_value(value: Any) -> Any:
    """Refuse a value too big to carry on with (after the operation that built it)."""
    if isinstance(value, str | list | tuple | dict | set) and len(value) > MAX_VALUE_CHARS:
        raise CopyError("too_long", f"a value of {len(value):,} characters or items (at most {MAX_VALUE_CHARS:,})")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CopyError("too_much_work", "a number with more than ~77 digits")
    return value


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple) else 0


def _check_binop(symbol: str, left: Any, right: Any) -> None:
    """Refuse before computing: a huge power, repetition or format width, or a division by zero."""
    if symbol in ("/", "//", "%") and isinstance(right, int | float) and not isinstance(left, str) and right == 0:
        raise CopyError("division_by_zero", f"division by zero ({left!r} {symbol} 0)")
    if symbol == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
        if max(abs(left).bit_length(), 1) * right > MAX_INT_BITS and abs(left) > 1:
            raise CopyError("too_much_work", f"a power too large ({left} ** {right})")
    if symbol == "*":
        count, item = (right, left) if isinstance(right, int) else (left, right)
        if isinstance(count, int) and _size(item) * max(count, 0) > MAX_VALUE_CHARS:
            raise CopyError("too_long", f"a repetition of {_size(item) * count:,} characters or items")
        if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > 2 * MAX_INT_BITS:
            raise CopyError("too_much_work", "a product of two numbers too large")
    if symbol == "%" and isinstance(left, str) and _wide_percent_format(left):
        raise CopyError("too_long", "a % format with a width of 1,000 or more")


def _wide_percent_format(text: str) -> bool:
    for spec in _PERCENT_SPEC.finditer(text):
        if any(part == "*" or (part and int(part) >= 1000) for part in spec.groups()):
            return True
    return False


def _check_call(obj: Any, args: tuple[Any, ...]) -> None:
    """Refuse string methods whose result would be far bigger than their inputs."""
    owner = getattr(obj, "__self__", None)
    if not isinstance(owner, str):
        return
    name = getattr(obj, "__name__", "")
    if any(isinstance(a, int) and a > MAX_VALUE_CHARS for a in args):
        raise CopyError("too_long", f"str.{name} with a width over {MAX_VALUE_CHARS:,}")
    if name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        _check_replace(owner, args[0], args[1])
    if name == "join" and args:
        _check_join(owner, args[0])


def _check_replace(text: str, old: str, new: str) -> None:
    hits = text.count(old) if old else len(text) + 1
    if len(text) + hits * len(new) > MAX_VALUE_CHARS:
        raise CopyError("too_long", "a replace() whose result would be too long")


def _check_join(separator: str, items: Any) -> None:
    if isinstance(items, str | list | tuple) and len(separator) * len(items) > MAX_VALUE_CHARS:
        raise CopyError("too_long", "a join() whose result would be too long")


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise CopyError("too_much_work", f"range() of {len(numbers):,} numbers (at most {MAX_RANGE:,})")
    return numbers


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    """What every `for` of a merchant's template iterates through: one budget step per item."""
    budget = _BUDGET.get()
    for item in iterable:
        if budget is not None:
            budget.spend()
        yield item


def _guarded_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A filter with a budget step, bounded widths and a size check of what it returns."""
    skip = 1 if getattr(fn, "jinja_pass_arg", None) is not None else 0  # the environment or context Jinja passes first

    @wraps(fn)  # keeps jinja_pass_arg (pass_environment / pass_eval_context)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _spend()
        plain = args[skip:]
        if any(isinstance(a, int) and not isinstance(a, bool) and a > MAX_VALUE_CHARS for a in (*plain, *kwargs.values())):
            raise CopyError("too_long", f"the {name} filter with a width over {MAX_VALUE_CHARS:,}")
        if name == "replace" and len(plain) >= 3 and all(isinstance(a, str) for a in plain[:3]):
            _check_replace(plain[0], plain[1], plain[2])
        if name == "join" and plain and isinstance(plain[0], str | list | tuple):
            separator = plain[1] if len(plain) > 1 and isinstance(plain[1], str) else str(kwargs.get("d", ""))
            _check_join(separator, plain[0])
        return _check_value(fn(*args, **kwargs))
    return guarded


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox whose calls and arithmetic spend the rendering's budget."""

    intercepted_binops = _ARITHMETIC

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and callable(value) and attr not in _STR_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> None:
        return None  # str.format and format_map are refused as attributes (is_safe_attribute), not wrapped

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _spend()
        _check_binop(operator, left, right)
        return _check_value(_BINOPS[operator](left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _spend()
        _check_call(__obj, args)
        return _check_value(super().call(__context, __obj, *args, **kwargs))


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "//": operator.floordiv,
    "%": operator.mod, "**": operator.pow,
}


def make_sandbox(extra_filters: dict[str, Callable[..., Any]]) -> BoundedSandbox:
    """For copy a merchant can edit: no access to internals, no autoescape (escaped by the layout)."""
    env = BoundedSandbox(autoescape=False)
    env.globals = {"range": _bounded_range, "dict": dict}  # no lipsum, cycler, joiner or namespace
    env.filters = {name: _guarded_filter(name, DEFAULT_FILTERS[name]) for name in _FILTERS}
    env.filters.update({name: _guarded_filter(name, fn) for name, fn in extra_filters.items()})
    env.filters["_counted"] = _counted
    return env


def compile_bounded(env: BoundedSandbox, source: str) -> Template:
    """A merchant's template with every `for` iterating through the budget."""
    if len(source) > MAX_SOURCE_CHARS:
        raise CopyError("too_long", f"the template is longer than {MAX_SOURCE_CHARS:,} characters")
    tree = env.parse(source)
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, "_counted", [], [], None, None, lineno=loop.lineno)
    tree.set_environment(env)
    return env.from_string(tree)


def render_bounded(template: Template, variables: dict[str, Any], max_chars: int) -> str:
    """Render within a fresh budget; stop as soon as the output passes `max_chars`."""
    token = _BUDGET.set(Budget(RENDER_SECONDS))
    try:
        chunks: list[str] = []
        written = 0
        for chunk in template.generate(**variables):
            written += len(chunk)
            if written > max_chars:
                raise CopyError("too_long", f"rendered text is longer than {max_chars:,} characters")
            chunks.append(chunk)
        return "".join(chunks)
    finally:
        _BUDGET.reset(token)
