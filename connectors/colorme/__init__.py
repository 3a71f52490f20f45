"""ColorMe Shop (カラーミーショップ): OAuth, App-store hooks, polling sync and the storefront script.

`PLATFORM` is the descriptor the generic code finds through the `okaeri.platforms` entry point.
"""
from __future__ import annotations

from connectors.colorme.platform import ColorMePlatform

__all__ = ["PLATFORM"]

PLATFORM = ColorMePlatform()
