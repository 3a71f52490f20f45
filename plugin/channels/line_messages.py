"""A scenario's message as LINE message objects: a text message (headline, intro, the call to
action and the opt-out link) and Flex messages — an item carousel for the cart, browsing, ranking
and recommendation presets, 0–10 postback buttons for a survey — with Japanese alt text.

Rendered from the same draft as the mail: the same copy (merchant overrides included, in the
sandbox) and the same click-tracked links (`Draft.link`)."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from plugin.channels.base import Draft
from plugin.channels.layout import money, render_copy

__all__ = ["render_line", "SURVEY_DATA", "MAX_BUBBLES", "MAX_ALT_TEXT", "MAX_TEXT", "survey_postback"]

MAX_BUBBLES = 10  # items shown in one carousel
MAX_ALT_TEXT = 400  # LINE allows 1,500; the notification shows far less
MAX_TEXT = 5000  # LINE's limit for one text message
SURVEY_DATA = "okaeri-survey"  # the postback data's prefix: okaeri-survey=<survey token>&score=<0-10>
_WORDS = {
    "ja": {"view": "商品を見る", "more": "こちらもおすすめです", "items": "商品のご案内", "few_left": "残りわずか",
           "unsubscribe": "配信停止", "survey": "アンケート", "carousel_alt": "{subject}（商品{count}点のご案内）"},
    "en": {"view": "View", "more": "You may also like", "items": "Items", "few_left": "Only a few left",
           "unsubscribe": "Unsubscribe", "survey": "Survey", "carousel_alt": "{subject} ({count} items)"},
}


def render_line(draft: Draft) -> tuple[str, str, list[dict[str, Any]]]:
    """(subject, the text message's text, the message objects: 1 to 3)."""
    words = _WORDS["en" if draft.locale == "en" else "ja"]
    variables = draft.variables
    subject = render_copy(draft.subject_template or draft.copy.subject, variables)
    headline = render_copy(draft.copy.headline, variables)
    intro = render_copy(draft.intro_template or draft.copy.intro, variables)
    lines = [headline, "", intro]
    if draft.copy.cta and variables.get("cta_url"):
        lines += ["", f"{draft.copy.cta}: {draft.link(variables['cta_url'])}"]
    lines += ["", f"{words['unsubscribe']}: {draft.unsubscribe_url}"]
    text = "\n".join(lines).strip()[:MAX_TEXT]
    messages: list[dict[str, Any]] = [{"type": "text", "text": text}]
    items = [*variables.get("items", []), *variables.get("recommendations", [])][:MAX_BUBBLES]
    if items:
        alt = words["carousel_alt"].format(subject=subject, count=len(items))[:MAX_ALT_TEXT]
        bubbles = [_item_bubble(item, draft, words) for item in items]
        messages.append({"type": "flex", "altText": alt, "contents": {"type": "carousel", "contents": bubbles}})
    survey = variables.get("survey")
    if isinstance(survey, dict) and survey.get("links"):
        messages.append(_survey_message(survey, subject, words))
    return subject, text, messages


def _item_bubble(item: dict[str, Any], draft: Draft, words: dict[str, str]) -> dict[str, Any]:
    currency = draft.variables.get("shop", {}).get("currency", "JPY")
    name = str(item.get("name", ""))[:80] or "-"
    body: list[dict[str, Any]] = [
        {"type": "text", "text": f"{item['rank']}. {name}" if item.get("rank") else name, "wrap": True, "weight": "bold",
         "size": "md"},
        {"type": "text", "text": money(int(item.get("price") or 0), currency, draft.locale), "size": "sm", "color": "#555555"},
    ]
    if item.get("few_left"):
        body.append({"type": "text", "text": words["few_left"], "size": "xs", "color": "#d35400"})
    bubble: dict[str, Any] = {"type": "bubble", "size": "kilo",
                              "body": {"type": "box", "layout": "vertical", "spacing": "sm", "contents": body}}
    image = str(item.get("image_url") or "")
    if urlsplit(image).scheme == "https":  # LINE shows only HTTPS images
        bubble["hero"] = {"type": "image", "url": image, "size": "full", "aspectMode": "cover", "aspectRatio": "1:1"}
    url = str(item.get("url") or draft.variables.get("cta_url") or "")
    if url:
        bubble["footer"] = {"type": "box", "layout": "vertical", "contents": [
            {"type": "button", "style": "primary", "color": "#d35400", "height": "sm",
             "action": {"type": "uri", "label": words["view"], "uri": draft.link(url)}}]}
    return bubble


def survey_postback(token: str, score: int) -> str:
    return f"{SURVEY_DATA}={token}&score={score}"


def _survey_message(survey: dict[str, Any], subject: str, words: dict[str, str]) -> dict[str, Any]:
    """Eleven postback buttons (0–10): a tap inside LINE is the customer's own answer."""
    buttons = []
    for link in survey["links"]:
        token = str(link["url"]).rstrip("/").rsplit("/", 2)[-2]  # /s/{token}/{score}: the same signed token as the mail's
        score = int(link["score"])
        buttons.append({"type": "button", "style": "secondary", "height": "sm", "flex": 1,
                        "action": {"type": "postback", "label": str(score), "data": survey_postback(token, score),
                                   "displayText": str(score)}})
    rows = [{"type": "box", "layout": "horizontal", "spacing": "xs", "contents": buttons[:6]},
            {"type": "box", "layout": "horizontal", "spacing": "xs", "contents": buttons[6:]}]
    header = [{"type": "text", "text": str(survey.get("question", words["survey"])), "wrap": True, "weight": "bold"},
              {"type": "text", "text": f"{survey.get('low', '0')} / {survey.get('high', '10')}", "size": "xs",
               "color": "#888888", "wrap": True}]
    alt = f"{words['survey']}: {survey.get('question', subject)}"[:MAX_ALT_TEXT]
    return {"type": "flex", "altText": alt, "contents": {"type": "bubble", "body": {
        "type": "box", "layout": "vertical", "spacing": "md", "contents": [*header, *rows]}}}
