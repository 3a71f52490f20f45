"""HTTP routes, one module per audience: platform install hooks, storefront events, the merchant console, links in messages."""
