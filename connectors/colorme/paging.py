"""Offset paging that yields each record of a ColorMe listing once, though rows move meanwhile.

ColorMe pages with `limit`/`offset` over a live list. A row updated between two pages can move
(ColorMe documents no order for /sales and /customers): when a row before the current offset
leaves its place, every later row slides back one and the row at the page edge is never read.
So each page after the first is asked to start on the previous page's last record:
- found first: nothing moved, go on;
- found further in: rows were inserted before us (they changed after the walk began, so the next
  sync's cursor reads them), skip the repeats;
- missing: rows slid back past us; walk again from the start, yielding only ids not yet yielded.
A walk that keeps moving gives up with ProviderDown, so the caller's cursor stays where it was.
"""
from __future__ import annotations

import logging
from collections.abc import Generator, Iterator
from typing import Any

from connectors.colorme.client import ColorMeClient
from connectors.colorme.params import Endpoint, InvalidQuery
from connectors.errors import BadResponse, ProviderDown

__all__ = ["walk", "total", "MAX_RESTARTS"]

log = logging.getLogger("okaeri.colorme")
MAX_RESTARTS = 5


def walk(client: ColorMeClient, endpoint: Endpoint, *, limit: int | None = None,
         **filters: Any) -> Iterator[dict[str, Any]]:
    """Every record the listing holds for `filters`, each once; params are checked before any request."""
    page_size = limit or endpoint.page_size
    if "offset" in filters:
        raise InvalidQuery(f"GET {endpoint.path}: a walk sets offset itself")
    endpoint.query(**filters, limit=page_size, offset=0)  # refuse a bad query before the first request
    if page_size < 2:
        raise ValueError("an overlapping walk needs pages of at least 2")
    seen: set[str] = set()
    for attempt in range(MAX_RESTARTS + 1):
        if (yield from _walk_once(client, endpoint, page_size, filters, seen)):
            return
        log.info("okaeri.colorme.listing-moved", extra={"path": endpoint.path, "attempt": attempt, "seen": len(seen)})
    raise ProviderDown(f"ColorMe {endpoint.path}: the listing kept moving while it was paged", platform="colorme")


def total(client: ColorMeClient, endpoint: Endpoint, **filters: Any) -> int:
    """`meta.total` for `filters`, from one `limit=1` request."""
    return _meta_total(_get(client, endpoint, filters, 1, 0), 0)


def _walk_once(client: ColorMeClient, endpoint: Endpoint, page_size: int, filters: dict[str, Any],
               seen: set[str]) -> Generator[dict[str, Any], None, bool]:
    """One pass from offset 0; returns False when rows slid back past the pass (walk again)."""
    offset, edge = 0, None
    while True:
        body = _get(client, endpoint, filters, page_size, offset)
        page = _records(body, endpoint)
        fresh = page
        if edge is not None:
            ids = [str(record.get("id")) for record in page]
            if edge not in ids:
                return False
            fresh = page[ids.index(edge) + 1:]
        for record in fresh:
            key = str(record.get("id"))
            if key not in seen:
                seen.add(key)
                yield record
        if len(page) < page_size or offset + len(page) >= _meta_total(body, offset + len(page) + 1):  # no meta: go on
            return True
        edge, offset = str(page[-1].get("id")), offset + len(page) - 1


def _get(client: ColorMeClient, endpoint: Endpoint, filters: dict[str, Any], limit: int,
         offset: int) -> dict[str, Any]:
    return client.get(endpoint.path, endpoint.query(**filters, limit=limit, offset=offset))


def _records(body: dict[str, Any], endpoint: Endpoint) -> list[dict[str, Any]]:
    records = body.get(endpoint.name)
    if not isinstance(records, list) or not all(isinstance(r, dict) and "id" in r for r in records):
        raise BadResponse(f"ColorMe {endpoint.path}: no '{endpoint.name}' list in response", platform="colorme")
    return records


def _meta_total(body: dict[str, Any], default: int) -> int:
    try:
        return int((body.get("meta") or {}).get("total", default))
    except (TypeError, ValueError):
        raise BadResponse("ColorMe answered a meta.total that is not a number", platform="colorme") from None
