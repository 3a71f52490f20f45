"""The channel registry: `Message.channel` → the channel that delivers it.

Adding a channel is one module under plugin/channels/, one entry in FACTORIES and its settings.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

from plugin.channels.base import Channel
from plugin.channels.email import EmailChannel
from plugin.channels.line import LineChannel
from plugin.settings import Settings

__all__ = ["FACTORIES", "build_channels", "UnknownChannel", "label"]

FACTORIES: dict[str, Callable[[Settings], Channel]] = {
    EmailChannel.name: EmailChannel.from_settings,
    LineChannel.name: LineChannel.from_settings,
}


class UnknownChannel(LookupError):
    """A message or setting names a channel no registry entry provides."""


def build_channels(settings: Settings, extra: Mapping[str, Channel] | None = None) -> dict[str, Channel]:
    """One instance of every registered channel (plus `extra`, e.g. a test's), keyed by name."""
    channels = {name: factory(settings) for name, factory in FACTORIES.items()}
    channels.update(extra or {})
    return channels


def label(name: str, locale: str) -> str:
    """A channel's name for merchants ("メール", "LINE"), from its class; the name itself if it has none."""
    owner = getattr(FACTORIES.get(name), "__self__", None)
    labels = getattr(owner, "labels", {}) or {}
    return str(labels.get("en" if locale == "en" else "ja", name))
