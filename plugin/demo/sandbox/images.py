"""Product pictures the sandbox serves itself: a small PNG drawn from the product id (no external host).

PNG, not SVG, because mail clients (Gmail among them) do not show SVG images in a message.
"""
from __future__ import annotations

import hashlib
import struct
import zlib
from functools import lru_cache

__all__ = ["product_png", "SIZE"]

SIZE = 160
# One warm background per category (ColorMe's id_big), so a shop's pictures look like a set.
PALETTE = {1: (111, 78, 55), 2: (96, 125, 72), 3: (201, 150, 88), 4: (70, 98, 140), 5: (150, 110, 90), 6: (170, 80, 90)}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@lru_cache(maxsize=512)
def product_png(product_id: int, category: int = 0) -> bytes:
    """A SIZE×SIZE picture: the category's colour, and a disc whose place and shade come from the id."""
    digest = hashlib.sha256(str(product_id).encode()).digest()
    background = PALETTE.get(category, (120, 120, 120))
    disc = tuple(min(255, c + 60 + digest[i] % 60) for i, c in enumerate(background))
    cx, cy, radius = 50 + digest[3] % 60, 50 + digest[4] % 60, 28 + digest[5] % 24
    rows = bytearray()
    for y in range(SIZE):
        rows.append(0)  # filter: none
        for x in range(SIZE):
            inside = (x - cx) ** 2 + (y - cy) ** 2 <= radius ** 2
            rows.extend(disc if inside else background)
    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(bytes(rows), 9)) \
        + _chunk(b"IEND", b"")
