"""The platform registry: `{name: descriptor}`, found through the `okaeri.platforms` entry points.

Nothing here names a platform: each connector package declares its descriptor in
pyproject.toml (`[project.entry-points."okaeri.platforms"]`), and a runtime holds the
descriptors bound to its settings. Tests register extra descriptors on that runtime.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from connectors.platform import ENTRY_POINT_GROUP, Platform
from plugin.settings import Settings, config_error

__all__ = ["Platforms", "UnknownPlatform", "discover", "load_platforms", "check_platform_settings"]


class UnknownPlatform(LookupError):
    """No platform of that name is installed."""


def discover() -> list[Platform[Any]]:
    """The descriptors every installed package declares, unconfigured."""
    found: list[Platform[Any]] = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        descriptor = entry.load()
        if not isinstance(descriptor, Platform) or descriptor.name != entry.name:
            raise TypeError(f"entry point {entry.value} is not a Platform named {entry.name!r}")
        found.append(descriptor)
    return found


class Platforms:
    """The platforms one runtime serves, by name."""

    def __init__(self, descriptors: Iterable[Platform[Any]] = ()) -> None:
        self._by_name: dict[str, Platform[Any]] = {}
        for descriptor in descriptors:
            self.register(descriptor)

    def register(self, descriptor: Platform[Any]) -> None:
        """Serve one more platform; a second descriptor under the same name is refused."""
        if not descriptor.name:
            raise ValueError(f"{type(descriptor).__name__} has no name")
        if descriptor.name in self._by_name:
            raise ValueError(f"platform {descriptor.name!r} is registered already")
        self._by_name[descriptor.name] = descriptor

    def get(self, name: str) -> Platform[Any]:
        """The descriptor called `name`; raises UnknownPlatform."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownPlatform(f"no platform called {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Platform[Any]]:
        return iter(self._by_name.values())


def load_platforms(values: Mapping[str, Any]) -> Platforms:
    """Every discovered platform, configured from the environment overridden by `values`.

    Raises pydantic's ValidationError when a platform's setting is invalid.
    """
    return Platforms(descriptor.configured(values) for descriptor in discover())


def check_platform_settings(settings: Settings) -> None:
    """Configure every platform once from these settings; raise ConfigError naming a bad variable."""
    try:
        load_platforms(settings.platform_settings)
    except ValidationError as exc:
        raise config_error(exc) from None
