/* Okaeri storefront script for ColorMe Shop: reports product views and basket changes of
   logged-in customers to Okaeri. Reads only the documented `Colorme` object. */
(function () {
  "use strict";
  var C = window.Colorme;
  var me = document.currentScript && document.currentScript.src;
  if (!C || !me || !C.customer || !C.customer.id) return;
  var url = new URL(me);
  var endpoint = url.origin + "/events/colorme/" + encodeURIComponent(url.searchParams.get("key") || "");
  function send(payload) {
    payload.customer_id = String(C.customer.id);
    var body = JSON.stringify(payload);
    if (!(navigator.sendBeacon && navigator.sendBeacon(endpoint, body))) {
      fetch(endpoint, { method: "POST", body: body, keepalive: true, mode: "cors" });
    }
  }
  if (C.page === "product" && C.product && C.product.id) {
    send({ type: "product_view", product_id: String(C.product.id) });
  }
  if (C.basket && C.basket.items) {
    send({
      type: "basket",
      cart_url: location.origin + "/cart/",
      items: C.basket.items.map(function (i) {
        return { id: String(i.id), quantity: i.quantity, price: i.price };
      })
    });
  }
})();
