"""What the console needs inside Shopify admin: App Bridge, and a session token on every page load.

App Bridge (loaded from Shopify's CDN, as Shopify requires of embedded apps) keys itself by the
`shopify-api-key` meta tag and adds the session token to the app's own `fetch` calls. A server-
rendered console also navigates by links and forms, which carry no header: the glue below asks
App Bridge for a fresh token (`shopify.idToken()`, one minute) and puts it on the URL (`id_token`)
of each console link and form, where the app reads it as it does the first load's.
"""
from __future__ import annotations

from html import escape

__all__ = ["APP_BRIDGE_URL", "ADMIN_ORIGIN", "embedded_head"]

APP_BRIDGE_URL = "https://cdn.shopify.com/shopifycloud/app-bridge.js"
ADMIN_ORIGIN = "https://admin.shopify.com"

_GLUE = """<script>
(function () {
  function carry(url) {
    return window.shopify.idToken().then(function (token) {
      url.searchParams.set("id_token", token);
      url.searchParams.set("embedded", "1");
      return url;
    });
  }
  function console_(url) { return url.origin === location.origin && url.pathname.indexOf("/app") === 0; }
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[href]");
    if (!link || link.target || event.defaultPrevented || !window.shopify) return;
    var url = new URL(link.href, location.href);
    if (!console_(url)) return;
    event.preventDefault();
    carry(url).then(function (carried) { location.assign(carried.toString()); });
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || form.dataset.sessionToken === "1" || !window.shopify) return;
    var url = new URL(form.getAttribute("action") || location.href, location.href);
    if (!console_(url)) return;
    event.preventDefault();
    window.shopify.idToken().then(function (token) {
      if ((form.method || "get").toLowerCase() === "get") {
        var field = document.createElement("input");
        field.type = "hidden"; field.name = "id_token"; field.value = token;
        form.appendChild(field);
      } else {
        url.searchParams.set("id_token", token);
        form.action = url.toString();
      }
      form.dataset.sessionToken = "1";
      form.submit();
    });
  });
})();
</script>"""


def embedded_head(client_id: str) -> str:
    """The <head> markup of every console page inside the admin."""
    return (f'<meta name="shopify-api-key" content="{escape(client_id)}">\n'
            f'<script src="{APP_BRIDGE_URL}"></script>\n{_GLUE}')
