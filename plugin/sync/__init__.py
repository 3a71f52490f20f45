"""Platform data into storage: run a platform connector's sync for a shop, store what it yields, record storefront events."""
