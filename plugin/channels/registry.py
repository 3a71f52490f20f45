"""The channel registry: `Message.channel` → the channel that delivers it.

Adding a channel is one module under plugin/channels/, one entry in FACTORIES and its settings.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

from plugin.channels.base import Channel
from plugin.channels.email import EmailChannel
from plugin.settings import Settings

__all__ = ["FACTORIES", "build_channels", "UnknownChannel"]

FACTORIES: dict[str, Callable[[Settings], Channel]] = {
    EmailChannel.name: EmailChannel.from_settings,
}


class UnknownChannel(LookupError):
    """A message or setting names a channel no registry entry provides."""


def build_channels(settings: Settings, extra: Mapping[str, Channel] | None = None) -> dict[str, Channel]:
    """One instance of every registered channel (plus `extra`, e.g. a test's), keyed by name."""
    channels = {name: factory(settings) for name, factory in FACTORIES.items()}
    channels.update(extra or {})
    return channels
