"""Surveys: the customer's one-click NPS answer and comment (public, signed links under /s/…,
rate-limited like the tracking links), and the merchant's /app/surveys page with its CSV export.

Why a click records the score but a post confirms it: see plugin.measurement.surveys."""
from __future__ import annotations

import csv
import io
import math
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from plugin.measurement.nps import PERIODS, comments, export_rows, nps_by_group, nps_over_time, nps_summary
from plugin.measurement.surveys import (
    MAX_COMMENT,
    SCORES,
    SurveyLink,
    belongs,
    read_survey_token,
    record_click,
    record_form,
)
from plugin.storage.models import Shop
from plugin.web.deps import CurrentShop, Lang, RuntimeDep, SessionDep
from plugin.web.ratelimit import TrackingLimit
from plugin.web.survey_text import survey_texts
from plugin.web.templating import render_page

router = APIRouter()
COMMENTS_PER_PAGE = 20
FEW_ANSWERS = 30  # below this an NPS moves by several points with each answer


def _refused(lang: str, status: int, key: str, **fields: Any) -> HTMLResponse:
    s = survey_texts(lang)
    return render_page("survey_message.html", lang, status, s=s, title=s["answer_title"], message=s[key].format(**fields))


def _checked(runtime: RuntimeDep, session: SessionDep, token: str) -> tuple[SurveyLink | None, Shop | None]:
    """The link and its shop when the token is valid and names rows that belong together."""
    link = read_survey_token(runtime, token)
    if link is None or (link.message_id and not belongs(session, link)):
        return None, None
    return link, session.get(Shop, link.shop_id)


def _customer_lang(request: Request, shop: Shop) -> str:
    """The language of the mail (the shop's), unless the page's language switch asked for another."""
    asked = request.query_params.get("lang", "")
    return asked if asked in ("ja", "en") else shop.locale if shop.locale in ("ja", "en") else "ja"


def _score(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) <= 2 and int(text) in SCORES else None


@router.get("/s/{token}/{score}", response_class=HTMLResponse, dependencies=[TrackingLimit])
def answer(token: str, score: str, request: Request, runtime: RuntimeDep, session: SessionDep, lang: Lang) -> HTMLResponse:
    """One click on a score in the survey mail: stores it (until confirmed) and asks for a comment."""
    link, shop = _checked(runtime, session, token)
    if link is None or shop is None:
        return _refused(lang, 400, "invalid")
    lang = _customer_lang(request, shop)
    chosen = _score(score)
    if chosen is None:
        return _refused(lang, 400, "invalid_score")
    if not link.message_id:
        return _refused(lang, 200, "preview")
    stored = record_click(session, link, chosen, runtime.clock.now())
    s = survey_texts(lang)
    shown = stored.score if stored is not None else chosen
    already = s["already"].format(score=shown) if stored is not None and stored.confirmed_at and stored.score != chosen else ""
    return render_page("survey_answer.html", lang, s=s, shop=shop, token=token, score=shown, already=already,
                       scores=list(SCORES), comment="", max_comment=MAX_COMMENT, error="")


@router.post("/s/{token}", response_class=HTMLResponse, dependencies=[TrackingLimit])
def comment(token: str, request: Request, runtime: RuntimeDep, session: SessionDep, lang: Lang,
            score: Annotated[str, Form()] = "", comment: Annotated[str, Form()] = "") -> HTMLResponse:
    """The thank-you page's form: the score as chosen there and an optional comment; confirms the answer."""
    link, shop = _checked(runtime, session, token)
    if link is None or shop is None:
        return _refused(lang, 400, "invalid")
    lang = _customer_lang(request, shop)
    s, chosen = survey_texts(lang), _score(score.strip())
    error = s["invalid_score"] if chosen is None else s["too_long"].format(limit=MAX_COMMENT) \
        if len(comment.strip()) > MAX_COMMENT else ""
    if error or chosen is None:
        return render_page("survey_answer.html", lang, 422, s=s, shop=shop, token=token, score=chosen, already="",
                           scores=list(SCORES), comment=comment[:MAX_COMMENT * 2], max_comment=MAX_COMMENT, error=error)
    if not link.message_id:
        return _refused(lang, 200, "preview")
    stored = record_form(session, link, chosen, comment, runtime.clock.now())
    return render_page("survey_message.html", lang, s=s, title=s["answer_title"], message=s["done"],
                       detail=s["done_score"].format(score=stored.score), comment=stored.comment)


def _window(period: str, now: datetime, timezone: str) -> datetime:
    """The start of the page's window: 12 months (or 12 weeks) back from this one, in shop time."""
    local = now.astimezone(ZoneInfo(timezone)).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        return local - timedelta(days=local.weekday(), weeks=11)
    month = local.year * 12 + local.month - 1 - 11
    return local.replace(year=month // 12, month=month % 12 + 1, day=1)


@router.get("/app/surveys", response_class=HTMLResponse)
def surveys_page(shop: CurrentShop, session: SessionDep, runtime: RuntimeDep, lang: Lang,
                 period: Annotated[str, Query(pattern="^(month|week)$")] = "month",
                 page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> HTMLResponse:
    """NPS over time and per product group, the answer counts and the comments, newest first."""
    now = runtime.clock.now()
    start, shop_id = _window(period, now, shop.timezone), shop.id or 0
    summary = nps_summary(session, shop_id, start, None)
    found, total = comments(session, shop_id, start, None, page, COMMENTS_PER_PAGE)
    s = survey_texts(lang)
    return render_page(
        "surveys.html", lang, s=s, shop=shop, period=period, periods=PERIODS, summary=summary,
        overall=nps_summary(session, shop_id, None, None),
        over_time=nps_over_time(session, shop_id, shop.timezone, period, start, None, now),
        groups=nps_by_group(session, shop_id, start, None), comments=found, page=page,
        pages=max(1, math.ceil(total / COMMENTS_PER_PAGE)), total=total, few=FEW_ANSWERS)


@router.get("/app/surveys.csv")
def surveys_csv(shop: CurrentShop, session: SessionDep, lang: Lang) -> Response:
    """Every answer as CSV (UTF-8 with a BOM, so Excel reads the Japanese), in the merchant's language."""
    s = survey_texts(lang)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([s["csv_at"], s["csv_customer_id"], s["customer"], s["csv_email"], s["csv_order"], s["score"],
                     s["csv_category"], s["comment"], s["csv_groups"], s["csv_confirmed"]])
    for row in export_rows(session, shop.id or 0, None, None):
        at = row["answered_at"].astimezone(ZoneInfo(shop.timezone)).strftime("%Y-%m-%d %H:%M")
        writer.writerow([at, row["customer_id"], _cell(row["customer"]), _cell(row["email"]), _cell(row["order"] or ""),
                         row["score"], s[row["category"]], _cell(row["comment"]), _cell(" / ".join(row["groups"])),
                         s["yes"] if row["confirmed_at"] else s["no"]])
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="surveys.csv"'})


def _cell(text: str) -> str:
    """A customer's own words in a cell: never a spreadsheet formula."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
