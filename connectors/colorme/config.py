"""ColorMe's settings: the app's credentials, the hook secret, the API and its request budget."""
from __future__ import annotations

from pydantic import Field, field_validator

from connectors.platform import PlatformConfig

__all__ = ["ColorMeConfig"]


class ColorMeConfig(PlatformConfig):
    """Read from COLORME_* variables; the README's configuration table lists them."""

    client_id: str = Field(default="", alias="COLORME_CLIENT_ID")
    client_secret: str = Field(default="", alias="COLORME_CLIENT_SECRET")
    webhook_secret: str = Field(default="", alias="COLORME_WEBHOOK_SECRET")
    api_base: str = Field(default="https://api.shop-pro.jp", alias="COLORME_API_BASE")
    requests_per_minute: int = Field(default=120, alias="COLORME_REQUESTS_PER_MINUTE", ge=1, le=100000)
    # The budget's "minute": shorter only when a time-scaled sandbox is the API (tests, benches).
    rate_window_seconds: float = Field(default=60.0, alias="COLORME_RATE_WINDOW_SECONDS", gt=0, le=3600)
    # Where the per-token budget is counted, handed over by the runtime: a redis:// URL shares it
    # between processes (OKAERI_RATE_LIMIT_URL, or a Redis BROKER_URL), memory:// keeps it per process.
    rate_limit_store: str = Field(default="memory://", alias="OKAERI_RATE_LIMIT_STORE")
    redis_namespace: str = Field(default="okaeri", alias="OKAERI_REDIS_NAMESPACE", min_length=1)

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")
