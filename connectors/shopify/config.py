"""Shopify's settings: the app's credentials (as Shopify CLI names them), scopes and where the API is."""
from __future__ import annotations

from pydantic import Field, field_validator

from connectors.platform import PlatformConfig

__all__ = ["ShopifyConfig", "DEFAULT_SCOPES"]

# What Okaeri asks every shop for (shopify.app.toml's access_scopes and manifest.json say the same;
# tests/test_shopify_app_toml.py checks the three agree): customers with marketing consent, products
# with inventory, orders and abandoned checkouts (read_orders), and the web pixel's two scopes.
DEFAULT_SCOPES = ("read_customer_events", "read_customers", "read_inventory", "read_orders", "read_products",
                  "write_pixels")


class ShopifyConfig(PlatformConfig):
    """Read from SHOPIFY_* variables; the README's configuration table lists them."""

    client_id: str = Field(default="", alias="SHOPIFY_API_KEY")
    client_secret: str = Field(default="", alias="SHOPIFY_API_SECRET")
    # After a secret rotation Shopify may sign webhooks and session tokens with the old one for a while.
    previous_client_secret: str = Field(default="", alias="SHOPIFY_API_SECRET_PREVIOUS")
    scopes: str = Field(default=",".join(DEFAULT_SCOPES), alias="SHOPIFY_SCOPES")
    # The public address Shopify loads the app from (shopify.app.toml's application_url, without
    # the /shopify/app path); empty: OKAERI_BASE_URL.
    app_url: str = Field(default="", alias="SHOPIFY_APP_URL")
    # Empty: each shop's own https://{shop}.myshopify.com. Set (http://127.0.0.1:port) to point
    # token and GraphQL calls at a sandbox that serves every shop under /{shop}/ (demo, tests, benches).
    api_base: str = Field(default="", alias="SHOPIFY_API_BASE")
    timeout_seconds: float = Field(default=20.0, alias="SHOPIFY_TIMEOUT_SECONDS", gt=0, le=300)

    @field_validator("api_base", "app_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("scopes")
    @classmethod
    def _scope_list(cls, value: str) -> str:
        names = [s.strip() for s in value.split(",") if s.strip()]
        if not names or any(not s.replace("_", "").isalnum() for s in names):
            raise ValueError("must be a comma-separated list of Shopify access scopes")
        return ",".join(names)

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split(","))

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secrets a signature may be made with, current first."""
        return tuple(s for s in (self.client_secret, self.previous_client_secret) if s)
