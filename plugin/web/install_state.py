"""The page a merchant sees for an install that is not active: why it stopped and how to resume."""
from __future__ import annotations

from zoneinfo import ZoneInfo

from fastapi.responses import HTMLResponse

from plugin.install.lifecycle import AUTHORISING, REFUSED_PREFIX, TOKEN_REFUSED, open_app_url
from plugin.platforms import UnknownPlatform
from plugin.runtime import Runtime
from plugin.storage.models import InstallState, Shop
from plugin.web.install_texts import install_texts
from plugin.web.templating import render_page

__all__ = ["install_state_page"]


def install_state_page(runtime: Runtime, shop: Shop, lang: str, status: int = 200) -> HTMLResponse:
    """Why (the stored reason, in the merchant's language) and the way back: authorise again while
    the app is still installed, else reinstall from the platform's app store."""
    try:
        platform = runtime.platforms.get(shop.platform)
        title, store, resumable = platform.title, platform.app_store_url, True
    except UnknownPlatform:
        title, store, resumable = shop.platform, "", False
    reason = shop.state_reason or (AUTHORISING if shop.state == InstallState.installing else TOKEN_REFUSED)
    when = shop.uninstalled_at.astimezone(ZoneInfo(shop.timezone)).strftime("%Y-%m-%d %H:%M") if shop.uninstalled_at else ""
    resume = resumable and shop.state != InstallState.uninstalled
    return render_page("install_state.html", lang, status, s=install_texts(lang), shop_name=shop.name or shop.external_id,
                       state=str(shop.state), reason=reason, platform_title=title, when=when, app_store_url=store,
                       resume_url=open_app_url(runtime, platform, shop.external_id) if resume else "",
                       detail=shop.state_message.removeprefix(REFUSED_PREFIX) if reason == TOKEN_REFUSED else "")
