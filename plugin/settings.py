"""Configuration from environment variables, validated once at start."""
from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path
from typing import Any, Literal

from limits import parse_many
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ConfigError", "Settings", "load_settings", "config_error", "ensure_secret_key"]

DB_SCHEMES = ("sqlite", "postgresql")
BROKER_SCHEMES = ("memory", "redis", "rediss", "amqp", "amqps")
RATE_LIMIT_SCHEMES = ("memory", "redis", "rediss")


class ConfigError(Exception):
    """Raised when the environment holds an invalid setting; the message names the variable."""


class Settings(BaseSettings):
    """Every setting Okaeri reads; the README's configuration table mirrors this class."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    data_dir: Path = Field(default=Path(".okaeri"), alias="OKAERI_DATA_DIR")
    database_url: str = Field(default="", alias="DATABASE_URL")
    broker_url: str = Field(default="memory://", alias="BROKER_URL")
    redis_namespace: str = Field(default="okaeri", alias="OKAERI_REDIS_NAMESPACE", min_length=1)
    secret_key: str = Field(default="", alias="OKAERI_SECRET_KEY")
    # Keys rotated out, comma-separated, newest first: still accepted for links, cookies and stored
    # tokens they signed or encrypted, never used to sign anything new.
    previous_secret_keys: str = Field(default="", alias="OKAERI_PREVIOUS_SECRET_KEYS")
    base_url: str = Field(default="http://127.0.0.1:8000", alias="OKAERI_BASE_URL")
    smtp_host: str = Field(default="127.0.0.1", alias="OKAERI_SMTP_HOST")
    smtp_port: int = Field(default=8025, alias="OKAERI_SMTP_PORT", ge=1, le=65535)
    smtp_user: str = Field(default="", alias="OKAERI_SMTP_USER")
    smtp_password: str = Field(default="", alias="OKAERI_SMTP_PASSWORD")
    smtp_starttls: bool = Field(default=False, alias="OKAERI_SMTP_STARTTLS")
    smtp_timeout: float = Field(default=10.0, alias="OKAERI_SMTP_TIMEOUT", gt=0)
    mail_from: str = Field(default="no-reply@okaeri.example", alias="OKAERI_MAIL_FROM")
    # DKIM (RFC 6376): every mail is signed when a domain is set, with an RSA key given as PEM,
    # inline (newlines may be written as \n) or in a file.
    dkim_domain: str = Field(default="", alias="OKAERI_DKIM_DOMAIN")
    dkim_selector: str = Field(default="", alias="OKAERI_DKIM_SELECTOR")
    dkim_private_key: str = Field(default="", alias="OKAERI_DKIM_PRIVATE_KEY", repr=False)
    dkim_private_key_file: Path | None = Field(default=None, alias="OKAERI_DKIM_PRIVATE_KEY_FILE", validate_default=True)
    # VERP: when set, each mail's envelope sender is bounces+<signed ref>@this domain, whose MX is
    # `okaeri bounces` (or a relay handing bounces to it).
    bounce_domain: str = Field(default="", alias="OKAERI_BOUNCE_DOMAIN")
    # A relay's webhook (POST /mail/reports) takes report mails with this bearer token; off when empty.
    bounce_webhook_token: str = Field(default="", alias="OKAERI_BOUNCE_WEBHOOK_TOKEN", repr=False)
    line_api_base: str = Field(default="https://api.line.me", alias="LINE_API_BASE")
    line_timeout: float = Field(default=10.0, alias="OKAERI_LINE_TIMEOUT", gt=0)
    worker_threads: int = Field(default=4, alias="OKAERI_WORKER_THREADS", ge=1, le=64)
    metrics_token: str = Field(default="", alias="OKAERI_METRICS_TOKEN")
    log_format: Literal["text", "json"] = Field(default="text", alias="OKAERI_LOG_FORMAT")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="WARNING", alias="OKAERI_LOG_LEVEL")
    shutdown_timeout: float = Field(default=30.0, alias="OKAERI_SHUTDOWN_TIMEOUT", gt=0, le=600)
    tick_partitions: int = Field(default=2, alias="OKAERI_TICK_PARTITIONS", ge=1, le=32)
    # Rate limits of the public endpoints, in the `limits` notation ("120/minute"; several joined by ";").
    rate_limit_url: str = Field(default="", alias="OKAERI_RATE_LIMIT_URL")
    rate_limit_events_shop: str = Field(default="6000/minute", alias="OKAERI_RATE_LIMIT_EVENTS_SHOP")
    rate_limit_events_visitor: str = Field(default="120/minute", alias="OKAERI_RATE_LIMIT_EVENTS_VISITOR")
    rate_limit_tracking: str = Field(default="600/minute", alias="OKAERI_RATE_LIMIT_TRACKING")
    rate_limit_unsubscribe: str = Field(default="30/minute", alias="OKAERI_RATE_LIMIT_UNSUBSCRIBE")
    rate_limit_raised_keys: str = Field(default="", alias="OKAERI_RATE_LIMIT_RAISED_KEYS")
    rate_limit_raised_events: str = Field(default="1000000/minute", alias="OKAERI_RATE_LIMIT_RAISED_EVENTS")
    trusted_proxies: str = Field(default="", alias="OKAERI_TRUSTED_PROXIES")
    # Variables of the platform plug-ins, which declare and read their own (connectors/*/config.py);
    # values given here by variable name win over the environment.
    platform_settings: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _keep_platform_settings(cls, values: Any) -> Any:
        """Hand every variable this class does not declare to the platforms, by its upper-case name."""
        if not isinstance(values, dict):
            return values
        known = {name.upper() for name in cls.model_fields} | {
            (field.alias or "").upper() for field in cls.model_fields.values()}
        extra = {key.upper(): value for key, value in values.items() if key.upper() not in known}
        kept = {key: value for key, value in values.items() if key.upper() in known}
        return {**kept, "platform_settings": {**values.get("platform_settings", {}), **extra}}

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if value and value.split(":", 1)[0].split("+", 1)[0] not in DB_SCHEMES:
            raise ValueError("must start with sqlite:// or postgresql://")
        return value

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str) -> str:
        if value.split(":", 1)[0] not in BROKER_SCHEMES:
            raise ValueError("must be memory://, redis://host:port/db or amqp://user:pass@host")
        return value

    @field_validator("rate_limit_url")
    @classmethod
    def _known_rate_limit_store(cls, value: str) -> str:
        if value and value.split(":", 1)[0] not in RATE_LIMIT_SCHEMES:
            raise ValueError("must be memory:// or redis://host:port/db")
        return value

    @field_validator("rate_limit_events_shop", "rate_limit_events_visitor", "rate_limit_tracking",
                     "rate_limit_unsubscribe", "rate_limit_raised_events")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError:
            raise ValueError("must read like 120/minute (several joined by ;, e.g. 10/second;300/minute)") from None
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in _listed(value):
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError(f"{part!r} is not an IP address or network (e.g. 10.0.0.0/8)") from None
        return value

    @property
    def rate_limit_store(self) -> str:
        """Where rate limits are counted: OKAERI_RATE_LIMIT_URL, else a Redis broker, else this process."""
        if self.rate_limit_url:
            return self.rate_limit_url
        return self.broker_url if self.broker_url.startswith(("redis:", "rediss:")) else "memory://"

    @property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The proxies whose X-Forwarded-For names the client (none by default)."""
        return tuple(ipaddress.ip_network(part, strict=False) for part in _listed(self.trusted_proxies))

    @property
    def rate_limit_raised_key_set(self) -> frozenset[str]:
        """Event keys of shops (a bench's) whose storefront events get the raised limit."""
        return frozenset(_listed(self.rate_limit_raised_keys))

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("secret_key")
    @classmethod
    def _strong_secret(cls, value: str) -> str:
        if value and len(value) < 32:
            raise ValueError("must be at least 32 characters (generate one with `openssl rand -hex 32`)")
        return value

    @field_validator("bounce_webhook_token")
    @classmethod
    def _long_token(cls, value: str) -> str:
        if value and len(value) < 32:
            raise ValueError("must be at least 32 characters (generate one with `openssl rand -hex 32`)")
        return value

    @field_validator("dkim_private_key_file")
    @classmethod
    def _dkim_complete(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        domain, selector, pem = (info.data.get(name, "") for name in ("dkim_domain", "dkim_selector", "dkim_private_key"))
        if not (domain or selector or pem or value):
            return value
        missing = [name for name, given in (("OKAERI_DKIM_DOMAIN", domain), ("OKAERI_DKIM_SELECTOR", selector)) if not given]
        if missing:
            raise ValueError(f"DKIM signing also needs {' and '.join(missing)}")
        if bool(pem) == bool(value):
            raise ValueError("give the DKIM key once: inline in OKAERI_DKIM_PRIVATE_KEY or as this file")
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a readable file")
        _check_rsa_key(_pem_of(pem, value))
        return value

    @property
    def dkim_key_pem(self) -> bytes:
        """The DKIM private key as PEM bytes (b"" when DKIM is off)."""
        return _pem_of(self.dkim_private_key, self.dkim_private_key_file) if self.dkim_domain else b""

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _any_case(cls, value: Any, info: Any) -> Any:
        if not isinstance(value, str):
            return value
        return value.upper() if info.field_name == "log_level" else value.lower()

    @field_validator("previous_secret_keys")
    @classmethod
    def _strong_previous(cls, value: str) -> str:
        if any(len(key) < 32 for key in _listed(value)):
            raise ValueError("each key must be at least 32 characters, separated by commas")
        return value

    @property
    def previous_secret_key_list(self) -> tuple[str, ...]:
        """The rotated-out keys still accepted, newest first."""
        return tuple(_listed(self.previous_secret_keys))

    @property
    def effective_database_url(self) -> str:
        """DATABASE_URL, or a SQLite file under the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'okaeri.db').resolve()}"


def _pem_of(inline: str, path: Path | None) -> bytes:
    return path.read_bytes() if path is not None else inline.replace("\\n", "\n").encode()


def _check_rsa_key(pem: bytes) -> None:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ValueError("the DKIM key is not an unencrypted PEM private key") from None
    if not isinstance(key, RSAPrivateKey) or key.key_size < 1024:
        raise ValueError("the DKIM key must be an RSA key of 1024 bits or more (2048 recommended)")


def _listed(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def load_settings(**overrides: Any) -> Settings:
    """Read the environment; raise ConfigError naming the first bad variable. The platforms'
    own variables are checked by `plugin.platforms.check_platform_settings`."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise config_error(exc) from None


def config_error(exc: ValidationError) -> ConfigError:
    """The first error of a settings class, naming the environment variable."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else "?"
    alias = Settings.model_fields[field].alias if field in Settings.model_fields else field
    return ConfigError(f"{alias or field}: {error['msg']}")


def ensure_secret_key(settings: Settings) -> Settings:
    """Return settings with a secret key: the configured one, or one the demo stores on disk."""
    if settings.secret_key:
        return settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key_file = settings.data_dir / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return settings.model_copy(update={"secret_key": key_file.read_text().strip()})
