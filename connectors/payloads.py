"""Reading a JSON body a stranger may have written: bounded depth, text that is real UTF-8."""
from __future__ import annotations

import json
from typing import Any

__all__ = ["UnreadableJson", "load_json", "MAX_DEPTH"]

MAX_DEPTH = 32  # platform hooks and storefront beacons nest three or four levels


class UnreadableJson(ValueError):
    """The body is not JSON we will read; the message says why (for a 4xx answer)."""


def load_json(body: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse `body`; UnreadableJson for bad JSON, nesting deeper than `max_depth`, or text with a
    lone surrogate (valid JSON escapes, but no database or mail can hold it)."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise UnreadableJson(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError:
        raise UnreadableJson("body is not JSON") from None
    _check(data, max_depth)
    return data


def _check(value: Any, depth: int) -> None:
    if depth < 0:
        raise UnreadableJson(f"JSON nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise UnreadableJson("text is not valid UTF-8 (a lone surrogate)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key, depth - 1)
            _check(item, depth - 1)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth - 1)
