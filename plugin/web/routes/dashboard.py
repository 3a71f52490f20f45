"""The merchant's dashboard (/app/): a period's figures per scenario and in total, charts over
time with their tables, and the same figures as CSV (/app/dashboard.csv)."""
from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from plugin.measurement.links import ATTRIBUTION_WINDOW
from plugin.measurement.nps import nps_summary
from plugin.measurement.periods import MAX_DAYS, Period, local_period
from plugin.measurement.reports import MAX_INTERVAL, MIN_ARM, REASONS, Dashboard, Figures, Lift, dashboard
from plugin.web.dashboard_text import dashboard_texts
from plugin.web.deps import CurrentShop, Lang, RuntimeDep, SessionDep
from plugin.web.errors import AppError
from plugin.web.templating import render_page

router = APIRouter(prefix="/app")
PRESETS = ("7", "30", "90")

FromDay = Annotated[str, Query(alias="from", max_length=10)]
ToDay = Annotated[str, Query(alias="to", max_length=10)]


@router.get("/", response_class=HTMLResponse)
def dashboard_page(shop: CurrentShop, session: SessionDep, runtime: RuntimeDep, lang: Lang, period: str = "30",
                   from_day: FromDay = "", to_day: ToDay = "", by: str = "day") -> HTMLResponse:
    """The page after login: what the scenarios did in the chosen period."""
    chosen = _period(shop.timezone, runtime.clock.now().astimezone(ZoneInfo(shop.timezone)).date(), period, from_day, to_day)
    board = dashboard(session, shop, chosen)
    by = "week" if by == "week" else "day"
    series = board.series(by)
    return render_page("dashboard.html", lang, shop=shop, d=dashboard_texts(lang), board=board, by=by, series=series,
                       preset=period if period in PRESETS else "custom", reasons=_reasons_seen(board),
                       charts=_charts(series, _reasons_seen(board), dashboard_texts(lang)), lift_text=_lift_text,
                       pct=_pct, money=_money, min_arm=MIN_ARM, max_points=round(MAX_INTERVAL * 100),
                       window_days=ATTRIBUTION_WINDOW.days, nav_active="dashboard",
                       nps=nps_summary(session, shop.id or 0, chosen.start, chosen.end),
                       query=f"period={period}&from={chosen.first}&to={chosen.last}&by={by}")


@router.get("/dashboard.csv")
def dashboard_csv(shop: CurrentShop, session: SessionDep, runtime: RuntimeDep, lang: Lang, period: str = "30",
                  from_day: FromDay = "", to_day: ToDay = "", by: str = "day") -> Response:
    """The dashboard's figures as CSV, UTF-8 with a BOM so Excel opens the Japanese columns."""
    chosen = _period(shop.timezone, runtime.clock.now().astimezone(ZoneInfo(shop.timezone)).date(), period, from_day, to_day)
    text = _csv(dashboard(session, shop, chosen), "week" if by == "week" else "day", lang)
    return Response("\ufeff" + text, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="okaeri-dashboard-{chosen.first}-{chosen.last}.csv"'})


def _period(tz: str, today: date, period: str, from_day: str, to_day: str) -> Period:
    """The last 7/30/90 local days up to today, or the custom days from–to; a clear 422 otherwise."""
    if period in PRESETS:
        return local_period(today - timedelta(days=int(period) - 1), today, tz)
    if period != "custom":
        raise AppError(422, "setting_refused", reason=("期間は 7・30・90 日か「期間を指定」から選んでください。",
                                                       "period must be 7, 30, 90 or custom"))
    try:
        first, last = date.fromisoformat(from_day), date.fromisoformat(to_day)
    except ValueError:
        raise AppError(422, "setting_refused", reason=("開始日と終了日を YYYY-MM-DD の形で指定してください。",
                                                       "from and to must be dates (YYYY-MM-DD)")) from None
    if first > last:
        raise AppError(422, "setting_refused", reason=("開始日は終了日より前の日付にしてください。",
                                                       "from must not be after to"))
    if (last - first).days >= MAX_DAYS:
        raise AppError(422, "setting_refused", reason=(f"期間は {MAX_DAYS} 日以内で指定してください。",
                                                       f"the period can be at most {MAX_DAYS} days"))
    return local_period(first, last, tz)


def _reasons_seen(board: Dashboard) -> list[str]:
    return [r for r in REASONS if board.total.held_back.get(r)]


def _charts(series: list[tuple[date, Figures]], reasons: list[str], d: dict[str, str]) -> dict[str, Any]:
    """What each chart draws; its table beneath is rendered from the same `series`."""
    labels = [day.isoformat() for day, _ in series]
    return {
        "messages": {"labels": labels, "series": [
            {"label": d["sent"], "data": [f.sent for _, f in series]},
            {"label": d["opened"], "data": [f.opened for _, f in series]},
            {"label": d["clicked"], "data": [f.clicked for _, f in series]}]},
        "revenue": {"labels": labels, "series": [
            {"label": d["revenue"], "data": [f.revenue for _, f in series]},
            {"label": d["conversions"], "data": [f.conversions for _, f in series], "type": "line", "axis": "y1"}]},
        "held": {"labels": labels, "stacked": True, "series": [
            {"label": d[f"reason.{r}"], "data": [f.held_back.get(r, 0) for _, f in series]} for r in reasons]},
    }


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "–"


def _money(amount: int, lang: str) -> str:
    return f"¥{amount:,}" if lang == "en" else f"{amount:,}円"


def _lift_text(lift: Lift, d: dict[str, str]) -> str:
    """'+1.2 points (−0.4 to +2.8)', or that there is not enough data yet."""
    interval = lift.interval
    if not lift.enough or interval is None or lift.value is None:
        return d["not_enough"]
    sep = " 〜 " if d["points"] == "ポイント" else " to "
    return f"{lift.value * 100:+.1f} {d['points']} ({interval[0] * 100:+.1f}{sep}{interval[1] * 100:+.1f})"


def _csv(board: Dashboard, by: str, lang: str) -> str:
    """One row per (day or week, scenario) with any figure, then each scenario's total, then the total."""
    d = dashboard_texts(lang)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([d["week_of"] if by == "week" else d["date"], "key", d["scenario"], d["sent"], d["opened"],
                     d["clicked"], d["conversions"], d["revenue"], d["held_back"], *(d[f"reason.{r}"] for r in REASONS),
                     d["treated"], d["control"], d["lift"], d["interval"]])

    def row(bucket: str, key: str, name: str, f: Figures, lift: Lift | None = None) -> list[Any]:
        cells = [bucket, key, name, f.sent, f.opened, f.clicked, f.conversions, f.revenue, f.held_back_total,
                 *(f.held_back.get(r, 0) for r in REASONS)]
        if lift is None:
            return cells
        interval = lift.interval if lift.enough else None
        return [*cells, lift.treated, lift.control, f"{lift.value:.4f}" if interval and lift.value is not None else "",
                f"{interval[0]:.4f}..{interval[1]:.4f}" if interval else d["not_enough"]]

    for s in board.scenarios:
        name = s.name_en if lang == "en" else s.name_ja
        for bucket, f in board.series(by, s.key):
            if f.sent or f.held_back:
                writer.writerow(row(bucket.isoformat(), s.key, name, f))
    for s in board.scenarios:
        writer.writerow(row(d["total"], s.key, s.name_en if lang == "en" else s.name_ja, s.figures, s.lift))
    writer.writerow(row(d["total"], "", d["total"], board.total, board.total_lift))
    return out.getvalue()
