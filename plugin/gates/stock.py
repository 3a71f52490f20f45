"""Gate 6, stock: never promote an item that is out of stock. Promoted items are read at
delivery with stock as it is then (`scenarios.base.in_stock_views`), sold-out ones dropped; a
message of a preset that needs items and is left with none is cancelled."""
from __future__ import annotations

from typing import Any

from plugin.gates.base import Cancel, Gate
from plugin.storage.models import Message

__all__ = ["Stock"]


class Stock(Gate):
    name = "stock"

    def content(self, message: Message, context: dict[str, Any], needs_items: bool) -> Cancel | None:
        if needs_items and not context.get("items"):
            return Cancel("stock: no promoted item is in stock any more")
        return None
