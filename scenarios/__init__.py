"""Preset scenarios, one module each, on the small interface in scenarios.base."""
from __future__ import annotations

from scenarios.base import Candidate, Scenario
from scenarios.cart_recovery import CartRecovery

__all__ = ["Candidate", "Scenario", "SCENARIOS", "get_scenario"]

SCENARIOS: dict[str, Scenario] = {s.key: s for s in (CartRecovery(),)}


def get_scenario(key: str) -> Scenario:
    """The preset with this key; KeyError names unknown keys."""
    try:
        return SCENARIOS[key]
    except KeyError:
        raise KeyError(f"unknown scenario {key!r}") from None
