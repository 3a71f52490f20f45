"""What a channel is asked to render for one message: the preset's copy in the shop's language,
the merchant's overrides, the template variables, and links that record clicks."""
from __future__ import annotations

from typing import Any

from plugin.channels.base import Channel, Draft
from plugin.measurement.links import click_url, open_url, unsubscribe_token
from plugin.measurement.surveys import survey_links
from plugin.runtime import Runtime
from plugin.storage.models import Message, ScenarioSetting, Shop, rfc_message_id
from scenarios import Scenario

__all__ = ["PREVIEW_UNSUBSCRIBE", "preview_unsubscribe_url", "unsubscribe_url", "shop_variables", "draft_for", "channel_for", "render_for"]


NAMELESS = {"ja": "お客", "en": "customer"}  # greets a customer the shop has no name for: "お客 様", "Dear customer"
PREVIEW_UNSUBSCRIBE = "preview"  # the unsubscribe "token" of previews and test sends: unsubscribes nobody


def preview_unsubscribe_url(runtime: Runtime) -> str:
    """The unsubscribe link of a preview or a test send: a page saying nothing was changed (a real
    customer's signed link there would unsubscribe that customer when the merchant clicks it)."""
    return f"{runtime.settings.base_url}/u/{PREVIEW_UNSUBSCRIBE}"


def unsubscribe_url(runtime: Runtime, shop_id: int, customer_id: int, message_id: int | None) -> str:
    """A signed link that works without login (and for RFC 8058 one-click POST)."""
    return f"{runtime.settings.base_url}/u/{unsubscribe_token(runtime, shop_id, customer_id, message_id)}"


def shop_variables(shop: Shop) -> dict[str, Any]:
    """What templates know of the sender (特定電子メール法: name, address, contact)."""
    return {"name": shop.name, "address": shop.sender_address, "email": shop.owner_email,
            "url": shop.domain, "currency": shop.currency}


def draft_for(runtime: Runtime, shop: Shop, scenario: Scenario, message: Message, customer_name: str,
              context: dict[str, Any], setting: ScenarioSetting | None, unsubscribe: str | None = None) -> Draft:
    """One message's draft: links wrapped for click tracking, the open pixel, the unsubscribe link."""
    if unsubscribe is None:
        unsubscribe = unsubscribe_url(runtime, shop.id or 0, message.customer_id, message.id)
    greeted = customer_name.strip() or NAMELESS.get(shop.locale, NAMELESS["ja"])
    variables = {**context, "shop": shop_variables(shop), "customer": {"name": greeted}, "unsubscribe_url": unsubscribe}
    variables.setdefault("items", [])
    variables.setdefault("recommendations", [])
    variables.setdefault("cta_url", shop.domain)
    if "survey" in context:  # a survey mail: the signed one-click answer links (plugin.measurement.surveys)
        variables["survey"] = {**context["survey"], "links": survey_links(runtime, shop.id or 0, message)}
    message_id = message.id or 0
    return Draft(message_id=rfc_message_id(message), to_address=message.to_address, to_name=customer_name,
                 from_name=shop.sender_name or shop.name, copy=scenario.copy["ja" if shop.locale == "ja" else "en"], locale=shop.locale,
                 variables=variables, subject_template=setting.subject_template if setting else None,
                 intro_template=setting.body_template if setting else None,
                 link=lambda url: click_url(runtime, message_id, url), pixel_url=open_url(runtime, message_id),
                 unsubscribe_url=unsubscribe, outbox_id=message_id)


def channel_for(runtime: Runtime, scenario: Scenario, setting: ScenarioSetting | None) -> Channel:
    """The channel a preset sends on in this shop: its setting's, else the preset's first choice."""
    return runtime.channels[setting.channel if setting else scenario.channels[0]]


def render_for(runtime: Runtime, shop: Shop, scenario: Scenario, message: Message, customer_name: str,
               context: dict[str, Any], setting: ScenarioSetting | None,
               unsubscribe: str | None = None) -> tuple[str, str, str]:
    """Subject, text and HTML of one message as its channel renders it (previews, test sends)."""
    draft = draft_for(runtime, shop, scenario, message, customer_name, context, setting, unsubscribe)
    rendered = channel_for(runtime, scenario, setting).render(draft)
    return rendered.subject, rendered.body_text, rendered.body_html
