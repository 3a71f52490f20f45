"""The one switch, per-preset settings, previews and test sends."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from plugin.channels.copy_errors import RECORD_PREFIX
from plugin.channels.layout import CopyError
from plugin.console.forms import SettingError, whole_number
from plugin.console.template_check import TemplateRefused, check_templates, failure_sentence, preview_draft
from plugin.delivery.drafts import preview_unsubscribe_url, render_for
from plugin.measurement.rollup import preset_counts
from plugin.storage.models import Customer, Message, MessageStatus, ScenarioSetting, Shop
from plugin.storage.rollup import count_cancelling
from plugin.storage.upsert import table_of, upsert
from scenarios import SCENARIOS, get_scenario

if TYPE_CHECKING:
    from plugin.runtime import Runtime

__all__ = ["set_standard_scenarios", "set_scenario", "scenario_overview", "preview", "TemplateRefused"]


def _cancel_pending(session: Session, shop: Shop, keys: list[str]) -> None:
    count_cancelling(session, "scenario switched off", col(Message.shop_id) == shop.id, col(Message.scenario_key).in_(keys))
    session.execute(
        update(Message)
        .where(col(Message.shop_id) == shop.id, col(Message.status) == MessageStatus.pending,
               col(Message.scenario_key).in_(keys))
        .values(status=MessageStatus.cancelled, last_error="scenario switched off")
    )


def set_standard_scenarios(session: Session, shop: Shop, enabled: bool, now: datetime) -> dict[str, str | None]:
    """Switch every preset the shop's data supports; returns preset → why it cannot run (or None).

    Turning off cancels the presets' pending messages at once.
    """
    reasons = {key: s.unsupported_reason(session, shop) for key, s in SCENARIOS.items()}
    rows = [{"shop_id": shop.id, "scenario_key": key, "enabled": enabled and reasons[key] is None,
             "channel": SCENARIOS[key].channels[0], "holdout_percent": shop.default_holdout_percent,  # the shop's rule
             "note": reasons[key] or "", "updated_at": now}
            for key in SCENARIOS]
    upsert(session, table_of(ScenarioSetting), rows, ["shop_id", "scenario_key"], ["enabled", "note", "updated_at"])
    if not enabled:
        _cancel_pending(session, shop, list(SCENARIOS))
    return reasons


def set_scenario(session: Session, shop: Shop, key: str, form: dict[str, str], now: datetime,
                 runtime: Runtime | None = None) -> ScenarioSetting:
    """Switch and tune one preset from the settings form; raises SettingError with a reason.

    Templates are checked against a sample of the shop's customers (`check_templates`), which
    needs the runtime; TemplateRefused names the customer and the reason.
    """
    scenario = get_scenario(key)
    setting = session.execute(select(ScenarioSetting).where(
        col(ScenarioSetting.shop_id) == shop.id, col(ScenarioSetting.scenario_key) == key)).scalar_one_or_none() \
        or ScenarioSetting(shop_id=shop.id or 0, scenario_key=key, updated_at=now)
    if form.get("enabled") not in (None, "", "0", "1"):  # a checkbox sends "1" or nothing
        raise SettingError("enabled は 0 か 1 で指定してください / enabled must be 0 or 1")
    enabled = form.get("enabled") == "1"
    if enabled and (reason := scenario.unsupported_reason(session, shop)):
        raise SettingError(reason)
    setting.enabled = enabled
    setting.delay_minutes = _optional(form.get("delay_minutes"), 0, 60 * 24 * 30, "配信までの待ち時間(分)", "delay_minutes")
    setting.holdout_percent = _optional(form.get("holdout_percent"), 0, 50, "効果測定用に配信しない割合(%)",
                                        "holdout_percent") or 0
    templates = {field: text for field in ("subject_template", "body_template") if (text := (form.get(field) or "").strip())}
    if templates:
        if runtime is None:
            raise TypeError("checking a template needs the runtime")
        check_templates(runtime, session, shop, scenario, templates)
    for field in ("subject_template", "body_template"):
        setattr(setting, field, templates.get(field))
    setting.updated_at = now
    session.add(setting)
    if not enabled:
        _cancel_pending(session, shop, [key])
    return setting


def _optional(value: str | None, low: int, high: int, name_ja: str, name_en: str) -> int | None:
    """An optional number field: empty means "the preset's default"."""
    return None if value in (None, "") else whole_number(value or "", low, high, name_ja, name_en)


def scenario_overview(session: Session, shop: Shop, lang: str, only: str | None = None) -> list[dict[str, Any]]:
    """Each preset's switch, tuning, note and message counts by status, for the settings page (one
    preset's counts only with `only`: a scenario page reads that preset's rows, not the shop's)."""
    scope = [col(Message.scenario_key) == only] if only else []
    settings = {s.scenario_key: s for s in session.execute(
        select(ScenarioSetting).where(col(ScenarioSetting.shop_id) == shop.id)).scalars()}
    counts: dict[str, dict[str, int]] = {}
    if only:  # one preset's page: from the rollup (its rows are hundreds of thousands on a large shop)
        counts[only], kinds = preset_counts(session, shop.id or 0, only)
        failures = {only: [failure_sentence(n, f"{RECORD_PREFIX}{kind}", lang) for kind, n in sorted(kinds.items())]}
    for key, status, n in [] if only else session.execute(
        select(col(Message.scenario_key), col(Message.status), func.count())
        .where(col(Message.shop_id) == shop.id, *scope).group_by(col(Message.scenario_key), col(Message.status))
    ):
        counts.setdefault(key, {})[str(status)] = n
    failures = failures if only else _template_failures(session, shop, lang, scope)
    return [
        {"key": key, "name": s.name(lang), "enabled": bool(settings.get(key) and settings[key].enabled),
         "setting": settings.get(key), "note": settings[key].note if key in settings else "",
         "counts": {st: counts.get(key, {}).get(st, 0) for st in ("sent", "pending", "control", "cancelled", "failed")},
         "template_failures": failures.get(key, [])}
        for key, s in SCENARIOS.items()
    ]


def _template_failures(session: Session, shop: Shop, lang: str, scope: list[Any]) -> dict[str, list[str]]:
    """Per preset, one sentence per reason its messages failed at rendering (delivery records the kind)."""
    by_kind: dict[str, dict[str, int]] = {}
    for key, error, n in session.execute(
        select(col(Message.scenario_key), col(Message.last_error), func.count())
        .where(col(Message.shop_id) == shop.id, *scope, col(Message.status) == MessageStatus.failed,
               col(Message.last_error).startswith(RECORD_PREFIX))
        .group_by(col(Message.scenario_key), col(Message.last_error))
    ):
        kind = error.removeprefix(RECORD_PREFIX).split(":", 1)[0]
        by_kind.setdefault(key, {})[kind] = by_kind.get(key, {}).get(kind, 0) + n
    return {key: [failure_sentence(n, f"{RECORD_PREFIX}{kind}", lang) for kind, n in sorted(kinds.items())]
            for key, kinds in by_kind.items()}


def preview(runtime: Runtime, session: Session, shop: Shop, key: str,
            customer_id: int | None = None) -> tuple[Customer, str, str, str]:
    """Render a preset for a real customer of the shop (no message is written); TemplateRefused
    when the saved templates fail for that customer."""
    scenario = get_scenario(key)
    query = select(Customer).where(col(Customer.shop_id) == shop.id, col(Customer.email) != "")
    if customer_id is not None:
        query = query.where(col(Customer.id) == customer_id)
    customer = session.execute(query.order_by(col(Customer.last_order_at).desc().nulls_last(), col(Customer.id))
                               .limit(1)).scalar_one_or_none()
    if customer is None:
        raise SettingError("この店舗にはまだ顧客がいません / the shop has no customers yet")
    setting = session.execute(select(ScenarioSetting).where(
        col(ScenarioSetting.shop_id) == shop.id, col(ScenarioSetting.scenario_key) == key)).scalar_one_or_none()
    draft, context = preview_draft(runtime, session, shop, scenario, customer)
    try:
        subject, text, html = render_for(runtime, shop, scenario, draft, customer.name, context, setting,
                                         preview_unsubscribe_url(runtime))
    except CopyError as exc:
        raise TemplateRefused(None, "previewed", customer.id, exc) from None
    return customer, subject, text, html
