"""Storage tables. Every row that belongs to a shop carries shop_id; times are timezone-aware UTC."""
from __future__ import annotations

from plugin.storage.models.catalog import FEW_LEFT, GroupingRule, Product
from plugin.storage.models.channels import ChannelRule
from plugin.storage.models.events import BrowseEvent, Cart, CartLine
from plugin.storage.models.hooks import DataExport, HookDelivery, PointFields
from plugin.storage.models.install import ScriptTag, ThanksPageOrder
from plugin.storage.models.jobs import QueuedTick
from plugin.storage.models.line import LineAccount, LineLink, LineLinkCode, LinePush, LineScenarioAccount
from plugin.storage.models.messages import (
    ConsentRecord,
    Conversion,
    Message,
    MessageEvent,
    MessageStatus,
    Suppression,
    Trigger,
    idempotency_key,
    rfc_message_id,
    trigger_key_sql,
    written,
)
from plugin.storage.models.orders import Order, OrderLine
from plugin.storage.models.recommendations import Recommendation, RecommendationSet
from plugin.storage.models.reports import DeliveryReport, ReportKind
from plugin.storage.models.rollup import RollupDay, RollupHeld, RollupMark
from plugin.storage.models.shop import (
    Customer,
    InstallState,
    Lease,
    ScenarioRun,
    ScenarioSetting,
    Shop,
    SyncState,
    WebhookReceipt,
)
from plugin.storage.models.surveys import SurveyAnswer, SurveyAnswerGroup
from plugin.storage.models.visitors import Proof, VisitorBinding

__all__ = [
    "FEW_LEFT",
    "BrowseEvent",
    "Cart",
    "CartLine",
    "ConsentRecord",
    "Conversion",
    "Customer",
    "GroupingRule",
    "InstallState",
    "Lease",
    "QueuedTick",
    "Proof",
    "Message",
    "RollupDay",
    "RollupHeld",
    "RollupMark",
    "MessageEvent",
    "MessageStatus",
    "Order",
    "OrderLine",
    "Product",
    "Recommendation",
    "RecommendationSet",
    "ScenarioRun",
    "ScenarioSetting",
    "ScriptTag",
    "Shop",
    "Suppression",
    "SurveyAnswer",
    "SurveyAnswerGroup",
    "SyncState",
    "ThanksPageOrder",
    "Trigger",
    "VisitorBinding",
    "WebhookReceipt",
    "DeliveryReport",
    "ReportKind",
    "idempotency_key",
    "rfc_message_id",
    "trigger_key_sql",
    "written",
    "LineAccount",
    "LineLink",
    "LineLinkCode",
    "LinePush",
    "LineScenarioAccount",
    "ChannelRule",
    "DataExport",
    "HookDelivery",
    "PointFields",
]
