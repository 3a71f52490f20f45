"""The merchant's customer pages: search, and one customer's orders, points, consent and messages."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse

from plugin.console.customer_page import MAX_PAGE, MAX_QUERY, customer_profile, search_customers
from plugin.console.customer_texts import customer_texts
from plugin.platforms import UnknownPlatform
from plugin.storage.db import MAX_ROW_ID
from plugin.web.deps import CurrentShop, Lang, RuntimeDep, SessionDep
from plugin.web.errors import AppError
from plugin.web.routes.console import _csrf
from plugin.web.templating import render_page

__all__ = ["router", "CustomerNotFound"]

router = APIRouter(prefix="/app")


class CustomerNotFound(AppError):
    """404 for an id the shop has no customer under (another shop's customer included): the same
    answer either way, so the page tells nothing about other shops."""

    def __init__(self) -> None:
        super().__init__(404, "unknown_customer")

    def message(self, lang: str) -> str:
        return customer_texts(lang)["not_found"]


@router.get("/customers", response_class=HTMLResponse)
def customer_search(shop: CurrentShop, session: SessionDep, lang: Lang,
                    q: Annotated[str, Query(max_length=MAX_QUERY)] = "",
                    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1) -> HTMLResponse:
    """Search by email, name or id; with nothing typed, the page says what to type."""
    found = search_customers(session, shop, q, page)
    return render_page("customers.html", lang, nav_active="customers", shop=shop, found=found, c=customer_texts(lang))


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer_detail(customer_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)], shop: CurrentShop, session: SessionDep,
                    runtime: RuntimeDep, lang: Lang, page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1) -> HTMLResponse:
    """One customer of the logged-in shop: orders, points, consent and every message considered."""
    try:
        platform = runtime.platforms.get(shop.platform)
        from_platform, title = platform.points_expire_after is None, platform.title
    except UnknownPlatform:  # a shop of a platform this process does not serve: its data is still readable
        from_platform, title = True, shop.platform
    profile = customer_profile(session, shop, customer_id, lang=lang, channels=runtime.channels,
                               expiry_from_platform=from_platform, platform_title=title, page=page,
                               now=runtime.clock.now())
    if profile is None:
        raise CustomerNotFound()
    return render_page("customer.html", lang, nav_active="customers", shop=shop, p=profile, c=customer_texts(lang),
                       csrf=_csrf(runtime, shop.id or 0))
