"""Shopify Admin API connector (OAuth, webhooks, GraphQL sync): its own issue, not built yet."""
