"""Reading a bulk operation's JSONL result as a stream, parents with their children.

A bulk query flattens nested connections: every object is one line, and a child (a product's
variant, an order's line item) carries `__parentId`. We run bulk queries with `groupObjects: true`,
so a parent's children follow it; the reader then holds one parent at a time and memory stays
flat whatever the shop's size. A child whose parent is not the one being read means the file is
not grouped, which is refused (BadResponse) rather than silently dropping lines.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from connectors.errors import BadResponse

__all__ = ["BulkObject", "gid_parts", "read_grouped", "MAX_LINE_BYTES"]

PLATFORM = "shopify"
MAX_LINE_BYTES = 1024 * 1024
# `gid://shopify/<Type>/<number>`, optionally with a `?query` (e.g. an InventoryLevel's location).
_GID = re.compile(r"gid://shopify/([A-Za-z]{1,64})/([0-9]{1,20})(?:\?[ -~]*)?", re.ASCII)
_decoder = json.JSONDecoder()
_decode = _decoder.decode
_scan: Callable[[str, int], tuple[Any, int]] = _decoder.scan_once  # type: ignore[attr-defined]  # set in __init__, untyped


@dataclass
class BulkObject:
    """One top-level object and its child lines, grouped by the child's type (e.g. `ProductVariant`)."""

    data: dict[str, Any]
    children: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    parts: tuple[str, str] | None = field(default=None, repr=False, compare=False)  # its id's, once read

    @property
    def kind(self) -> str:
        return self.id_parts()[0]

    def id_parts(self) -> tuple[str, str]:
        """Its id as (type, number) (`gid_parts`), read once however often it is asked."""
        if self.parts is None:
            self.parts = gid_parts(self.data.get("id"))
        return self.parts


_PREFIX = "gid://shopify/"


def gid_parts(gid: object) -> tuple[str, str]:
    """`gid://shopify/ProductVariant/123` → ("ProductVariant", "123"); BadResponse otherwise."""
    if isinstance(gid, str) and gid.startswith(_PREFIX) and gid.isascii():  # the common shape, without the regex
        kind, _, number = gid[len(_PREFIX):].partition("/")
        if kind.isalpha() and len(kind) <= 64 and number.isdigit() and len(number) <= 20:
            return kind, number
    match = _GID.fullmatch(gid) if isinstance(gid, str) else None
    if match is None:
        raise BadResponse(f"not a Shopify global id: {str(gid)[:60]!r}", platform=PLATFORM)
    return match[1], match[2]


def _value(text: str) -> Any:
    """One line's JSON value. A line that is exactly one value goes to the C scanner directly: the
    decoder's wrapper matched a whitespace pattern twice a line, a tenth of reading a bulk file."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return _decode(text)  # leading whitespace, or not JSON at all: the decoder says which
    if end != len(text) and text[end:].strip(" \t\n\r"):
        return _decode(text)  # more after the value: the decoder's "Extra data"
    return value


def read_grouped(lines: Iterable[bytes | str]) -> Iterator[BulkObject]:
    """Yield each top-level object once all its children have been read."""
    current: BulkObject | None = None
    current_id = ""
    for number, raw in enumerate(lines, start=1):
        if len(raw) > MAX_LINE_BYTES:
            raise BadResponse(f"bulk line {number} is larger than {MAX_LINE_BYTES} bytes", platform=PLATFORM)
        try:
            text = raw.decode() if isinstance(raw, bytes) else raw
            record = _value(text)
        except ValueError as exc:  # UnicodeDecodeError included
            if not raw.strip():
                continue
            raise BadResponse(f"bulk line {number} is not JSON", platform=PLATFORM) from exc
        if not isinstance(record, dict):
            raise BadResponse(f"bulk line {number} is not an object", platform=PLATFORM)
        parent = record.pop("__parentId", None)
        if parent is None:
            if current is not None:
                yield current
            current = BulkObject(record, parts=gid_parts(record.get("id")))
            current_id = record["id"]
            continue
        if current is None or parent != current_id:
            raise BadResponse(f"bulk line {number}: child of {str(parent)[:60]!r} is not under its parent "
                              "(the operation must run with groupObjects)", platform=PLATFORM)
        kind, _ = gid_parts(record.get("id"))
        current.children.setdefault(kind, []).append(record)
    if current is not None:
        yield current
