/* Okaeri storefront script for ColorMe Shop: reports product views and basket contents (product
   ids and quantities only) to Okaeri. Reads only the documented `Colorme` object.
   Identity: a random visitor id kept first-party in this shop's localStorage, the page's
   logged-in customer id (a claim Okaeri trusts only for the first browser that makes it), and
   the signed proof Okaeri's own mail links append to the landing URL (`okaeri_proof`).
   On the thanks page (a second script tag, display_scope thanks_page) it reports the order id
   (`Colorme.sale.id`), which Okaeri matches to the order once sync brings it. */
(function () {
  "use strict";
  var C = window.Colorme;
  var me = document.currentScript && document.currentScript.src;
  if (!C || !me) return;
  var PROOF_PARAM = "okaeri_proof", PROOF_TTL = 3600 * 1000;
  var url = new URL(me);
  var endpoint = url.origin + "/events/colorme/" + encodeURIComponent(url.searchParams.get("key") || "");
  function load(key) { try { return window.localStorage.getItem(key); } catch (e) { return null; } }
  function save(key, value) { try { window.localStorage.setItem(key, value); } catch (e) { /* private mode */ } }
  function randomId() {
    var bytes = new Uint8Array(18);
    window.crypto.getRandomValues(bytes);
    return btoa(String.fromCharCode.apply(null, bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  var visitor = load("okaeri_visitor");
  if (!visitor || !/^[A-Za-z0-9_-]{22,64}$/.test(visitor)) { visitor = randomId(); save("okaeri_visitor", visitor); }
  var here = new URL(location.href);
  var arrived = here.searchParams.get(PROOF_PARAM);
  if (arrived) {  // keep it first-party, and out of the address bar, history and referrers
    save("okaeri_proof", JSON.stringify({ token: arrived, at: Date.now() }));
    here.searchParams.delete(PROOF_PARAM);
    if (window.history && history.replaceState) history.replaceState(history.state, "", here.toString());
  }
  var proof = "";
  try {
    var kept = JSON.parse(load("okaeri_proof") || "null");
    if (kept && Date.now() - kept.at < PROOF_TTL) proof = String(kept.token);
  } catch (e) { /* unreadable: no proof */ }
  var customer = C.customer && C.customer.id ? String(C.customer.id) : "";
  if (!customer && !proof) return;  // nobody to speak for
  function send(payload) {
    payload.visitor = visitor;
    if (customer) payload.customer_id = customer;
    if (proof) payload.proof = proof;
    var body = JSON.stringify(payload);
    if (!(navigator.sendBeacon && navigator.sendBeacon(endpoint, body))) {
      fetch(endpoint, { method: "POST", body: body, keepalive: true, mode: "cors" });
    }
  }
  if (C.page === "product" && C.product && C.product.id) {
    send({ type: "product_view", product_id: String(C.product.id) });
  }
  if (C.sale && C.sale.id) {
    send({ type: "purchase", order_id: String(C.sale.id) });
  }
  if (C.basket && C.basket.items) {
    send({
      type: "basket",
      items: C.basket.items.map(function (i) { return { id: String(i.id), quantity: i.quantity }; })
    });
  }
})();
