"""NPS from survey answers, in SQL aggregates: over time (month or week, shop time), per product
group, the comments, and the rows of the CSV export.

NPS = promoters % − detractors % (promoters score 9–10, detractors 0–6), from −100 to +100."""
from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, case, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session, col

from plugin.storage.models import Customer, Order, Product, SurveyAnswer, SurveyAnswerGroup

__all__ = ["nps", "nps_summary", "nps_over_time", "nps_by_group", "comments", "export_rows", "category",
           "PROMOTER_FROM", "DETRACTOR_UPTO", "PERIODS"]

PROMOTER_FROM, DETRACTOR_UPTO = 9, 6
PERIODS = ("month", "week")


def nps(answers: int, promoters: int, detractors: int) -> float | None:
    """promoters % − detractors %; None without answers."""
    return None if not answers else 100.0 * (promoters - detractors) / answers


def category(score: int) -> str:
    """"promoter", "passive" or "detractor"."""
    return "promoter" if score >= PROMOTER_FROM else "detractor" if score <= DETRACTOR_UPTO else "passive"


def _counts() -> list[Any]:
    score = col(SurveyAnswer.score)
    return [func.count().label("answers"),
            func.coalesce(func.sum(case((score >= PROMOTER_FROM, 1), else_=0)), 0).label("promoters"),
            func.coalesce(func.sum(case((score <= DETRACTOR_UPTO, 1), else_=0)), 0).label("detractors")]


def _figures(answers: int, promoters: int, detractors: int) -> dict[str, Any]:
    answers, promoters, detractors = int(answers or 0), int(promoters or 0), int(detractors or 0)
    return {"answers": answers, "promoters": promoters, "detractors": detractors,
            "passives": answers - promoters - detractors, "nps": nps(answers, promoters, detractors)}


def _within(shop_id: int, start: datetime | None, end: datetime | None) -> list[ColumnElement[bool]]:
    answered = col(SurveyAnswer.answered_at)
    where = [col(SurveyAnswer.shop_id) == shop_id]
    if start is not None:
        where.append(answered >= start)
    if end is not None:
        where.append(answered < end)
    return where


def nps_summary(session: Session, shop_id: int, start: datetime | None, end: datetime | None) -> dict[str, Any]:
    """For the dashboard: answers, promoters, passives, detractors and the NPS (None without
    answers) of the answers given in [start, end)."""
    row = session.execute(select(*_counts()).where(*_within(shop_id, start, end))).one()
    return _figures(*row)


class _local_month(FunctionElement[str]):  # noqa: N801 (reads as a SQL function)
    """'YYYY-MM' of a UTC timestamp in a time zone (args: column, zone name, SQLite offset modifier)."""

    inherit_cache = True


class _local_week(FunctionElement[str]):  # noqa: N801
    """'YYYY-MM-DD' of the Monday starting the timestamp's week in a time zone (same args)."""

    inherit_cache = True


@compiles(_local_month, "sqlite")
def _month_sqlite(element: _local_month, compiler: Any, **kw: Any) -> str:
    column, _, offset = (compiler.process(c, **kw) for c in element.clauses)
    return f"strftime('%Y-%m', {column}, {offset})"


@compiles(_local_week, "sqlite")
def _week_sqlite(element: _local_week, compiler: Any, **kw: Any) -> str:
    column, _, offset = (compiler.process(c, **kw) for c in element.clauses)
    return f"date({column}, {offset}, 'weekday 0', '-6 days')"


@compiles(_local_month, "postgresql")
def _month_postgres(element: _local_month, compiler: Any, **kw: Any) -> str:
    column, zone, _ = (compiler.process(c, **kw) for c in element.clauses)
    return f"to_char({column} AT TIME ZONE {zone}, 'YYYY-MM')"


@compiles(_local_week, "postgresql")
def _week_postgres(element: _local_week, compiler: Any, **kw: Any) -> str:
    column, zone, _ = (compiler.process(c, **kw) for c in element.clauses)
    return f"to_char(date_trunc('week', {column} AT TIME ZONE {zone}), 'YYYY-MM-DD')"


def _period(period: str, timezone: str, now: datetime) -> ColumnElement[str]:
    """The answer's month or week in the shop's zone. SQLite has no zones: it shifts by the zone's
    offset now (exact for Japan, which keeps no summer time)."""
    offset = now.astimezone(ZoneInfo(timezone)).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    args = (col(SurveyAnswer.answered_at), literal(timezone), literal(f"{minutes:+d} minutes"))
    return _local_week(*args) if period == "week" else _local_month(*args)


def nps_over_time(session: Session, shop_id: int, timezone: str, period: str, start: datetime | None,
                  end: datetime | None, now: datetime) -> list[dict[str, Any]]:
    """One row per month (or week, labelled by its Monday) with answers, oldest first."""
    inner = select(_period(period, timezone, now).label("period"), col(SurveyAnswer.score).label("score")) \
        .where(*_within(shop_id, start, end)).subquery()
    score = inner.c.score
    rows = session.execute(select(inner.c.period, func.count(), func.sum(case((score >= PROMOTER_FROM, 1), else_=0)),
                                  func.sum(case((score <= DETRACTOR_UPTO, 1), else_=0)))
                           .group_by(inner.c.period).order_by(inner.c.period)).all()
    return [{"period": label, **_figures(n, p, d)} for label, n, p, d in rows]


def nps_by_group(session: Session, shop_id: int, start: datetime | None, end: datetime | None,
                 limit: int = 50) -> list[dict[str, Any]]:
    """Per product group (an answer counts in each group of its order), most answered first."""
    rows = session.execute(
        select(col(SurveyAnswerGroup.group_key), func.max(Product.name), *_counts())
        .join(SurveyAnswer, col(SurveyAnswer.id) == col(SurveyAnswerGroup.answer_id))
        .outerjoin(Product, col(Product.id) == col(SurveyAnswerGroup.product_id))
        .where(col(SurveyAnswerGroup.shop_id) == shop_id, *_within(shop_id, start, end))
        .group_by(col(SurveyAnswerGroup.group_key))
        .order_by(func.count().desc(), col(SurveyAnswerGroup.group_key)).limit(limit)).all()
    return [{"group": key, "name": name or key, **_figures(n, p, d)} for key, name, n, p, d in rows]


def comments(session: Session, shop_id: int, start: datetime | None, end: datetime | None, page: int,
             per_page: int = 20) -> tuple[list[dict[str, Any]], int]:
    """One page of the answers with a comment, newest comment first, and how many there are."""
    where = [*_within(shop_id, start, end), col(SurveyAnswer.comment) != ""]
    total = session.execute(select(func.count()).select_from(SurveyAnswer).where(*where)).scalar_one()
    rows = session.execute(
        select(col(SurveyAnswer.commented_at), col(SurveyAnswer.score), col(SurveyAnswer.comment),
               col(SurveyAnswer.customer_id), col(Customer.name))
        .join(Customer, col(Customer.id) == col(SurveyAnswer.customer_id)).where(*where)
        .order_by(col(SurveyAnswer.commented_at).desc(), col(SurveyAnswer.id).desc())
        .offset((page - 1) * per_page).limit(per_page)).all()
    return [{"at": at, "score": score, "comment": text, "customer_id": customer_id, "customer": name,
             "category": category(score)} for at, score, text, customer_id, name in rows], int(total)


def export_rows(session: Session, shop_id: int, start: datetime | None, end: datetime | None,
                batch: int = 1000) -> list[dict[str, Any]]:
    """Every answer in the period, oldest first, with its customer, order and product groups."""
    rows = [dict(r._mapping) for r in session.execute(
        select(col(SurveyAnswer.id), col(SurveyAnswer.answered_at), col(SurveyAnswer.updated_at),
               col(SurveyAnswer.score), col(SurveyAnswer.comment), col(SurveyAnswer.confirmed_at),
               col(SurveyAnswer.customer_id), col(Customer.name).label("customer"), col(Customer.email),
               col(Order.external_id).label("order"))
        .join(Customer, col(Customer.id) == col(SurveyAnswer.customer_id))
        .outerjoin(Order, col(Order.id) == col(SurveyAnswer.order_id))
        .where(*_within(shop_id, start, end)).order_by(col(SurveyAnswer.answered_at), col(SurveyAnswer.id)))]
    groups: dict[int, list[str]] = {}
    ids = [r["id"] for r in rows]
    for at in range(0, len(ids), batch):  # a bounded IN list per query
        for answer_id, key, name in session.execute(
                select(col(SurveyAnswerGroup.answer_id), col(SurveyAnswerGroup.group_key), col(Product.name))
                .outerjoin(Product, col(Product.id) == col(SurveyAnswerGroup.product_id))
                .where(col(SurveyAnswerGroup.answer_id).in_(ids[at:at + batch]))
                .order_by(col(SurveyAnswerGroup.answer_id), col(SurveyAnswerGroup.group_key))):
            groups.setdefault(answer_id, []).append(name or key)
    for row in rows:
        row["groups"] = groups.get(row["id"], [])
        row["category"] = category(row["score"])
    return rows
