"""Preset scenarios, one module each, on the small interface in scenarios.base."""
from __future__ import annotations

from scenarios.base import Scenario
from scenarios.browse_retargeting import BrowseRetargeting
from scenarios.cart_recovery import CartRecovery
from scenarios.points import PointExpiry, PointStatement
from scenarios.post_purchase import PostPurchase
from scenarios.ranking import Ranking
from scenarios.recommendation import Recommendation
from scenarios.stock_trigger import StockTrigger
from scenarios.winback import Winback

__all__ = ["Scenario", "SCENARIOS", "get_scenario", "by_priority"]

SCENARIOS: dict[str, Scenario] = {s.key: s for s in (
    CartRecovery(), BrowseRetargeting(), PointExpiry(), PointStatement(), Ranking(), Recommendation(),
    PostPurchase(), Winback(), StockTrigger())}


def get_scenario(key: str) -> Scenario:
    """The preset with this key; KeyError names unknown keys."""
    try:
        return SCENARIOS[key]
    except KeyError:
        raise KeyError(f"unknown scenario {key!r}") from None


def by_priority() -> list[Scenario]:
    """Presets in the order the engine runs them: the frequency cap goes to the first."""
    return sorted(SCENARIOS.values(), key=lambda s: -s.priority)
