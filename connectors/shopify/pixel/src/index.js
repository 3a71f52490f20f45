// Okaeri's web pixel: tells Okaeri which products a visitor viewed and added to the cart and which
// checkout they completed, pointing at the shop's own synced data only (ids and quantities; prices,
// names and links in a message always come from Okaeri's storage).
//
// Nothing is sent unless the visitor allowed both analytics and marketing: the initial consent comes
// from init.customerPrivacy and every change from the visitorConsentCollected event. The visitor id is
// Shopify's clientId; the customer is the one Shopify's pixel reports as logged in (issue 6's
// identity rules: Okaeri trusts that claim only as far as its own rules allow).
import {register} from '@shopify/web-pixels-extension';

const PROOF_PARAM = 'okaeri_proof';

export function allowed(privacy) {
  return Boolean(privacy && privacy.analyticsProcessingAllowed && privacy.marketingAllowed);
}

export function plainId(value) {
  // Pixel events carry plain numeric ids; an Admin-style gid is reduced to its number.
  const text = String(value == null ? '' : value);
  const match = /(\d{1,20})$/.exec(text);
  return match ? match[1] : '';
}

export function cartItems(lines) {
  const items = new Map();
  for (const line of lines || []) {
    const id = plainId(line && line.merchandise && line.merchandise.product && line.merchandise.product.id);
    const quantity = Number(line && line.quantity) || 0;
    if (id && quantity > 0) items.set(id, (items.get(id) || 0) + quantity);
  }
  return items;
}

export function makePixel({analytics, browser, init, settings, customerPrivacy}) {
  let privacy = init.customerPrivacy;
  if (customerPrivacy && customerPrivacy.subscribe) {
    customerPrivacy.subscribe('visitorConsentCollected', (event) => { privacy = event.customerPrivacy; });
  }
  const customerId = plainId(init.data && init.data.customer && init.data.customer.id);
  const basket = cartItems(init.data && init.data.cart && init.data.cart.lines);
  const href = (init.context && init.context.document && init.context.document.location
    && init.context.document.location.href) || '';
  let proof = '';
  try { proof = new URL(href).searchParams.get(PROOF_PARAM) || ''; } catch (e) { proof = ''; }
  if (!/^[A-Za-z0-9._-]{0,200}$/.test(proof)) proof = '';

  function send(event, fields) {
    if (!allowed(privacy) || !settings.eventUrl) return false;  // consent first, always
    const body = JSON.stringify({
      visitor: event.clientId, customer_id: customerId, proof,
      occurred_at: Math.floor(Date.parse(event.timestamp) / 1000) || undefined, ...fields,
    });
    browser.sendBeacon(settings.eventUrl, body);  // text/plain: no CORS preflight
    return true;
  }

  analytics.subscribe('product_viewed', (event) => {
    const variant = event.data && event.data.productVariant;
    const id = plainId(variant && variant.product && variant.product.id);
    if (id) send(event, {type: 'product_view', product_id: id});
  });
  analytics.subscribe('product_added_to_cart', (event) => {
    const line = event.data && event.data.cartLine;
    const added = cartItems(line ? [line] : []);
    for (const [id, quantity] of added) basket.set(id, (basket.get(id) || 0) + quantity);
    if (added.size) {
      send(event, {type: 'basket', items: [...basket].map(([id, quantity]) => ({id, quantity}))});
    }
  });
  analytics.subscribe('checkout_completed', (event) => {
    const order = event.data && event.data.checkout && event.data.checkout.order;
    const id = plainId(order && order.id);
    if (id) send(event, {type: 'purchase', order_id: id});
  });
  return {send};
}

register(makePixel);
