"""Configuration classes, read from the environment (and a .env file in development).

`LOYALINK_ENV` picks the class: production (the default), demo, development or testing.
Production has no secret defaults: `ProductionConfig.validate()` refuses to start when a
secret is missing or a provider URL points at the sandbox.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import load_dotenv

APPLE_ID_URL = "https://appleid.apple.com"


class ConfigError(RuntimeError):
    """The configuration cannot run: the message names the variable to set."""


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name)
    if raw is None:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _read_key(value_var: str, file_var: str) -> str | None:
    """A PEM key given inline (\\n escapes allowed) or as a path to a file."""
    inline = _env(value_var)
    if inline:
        return inline.replace("\\n", "\n")
    path = _env(file_var)
    if path:
        try:
            with open(path, encoding="ascii") as handle:
                return handle.read()
        except OSError as exc:
            raise ConfigError(f"{file_var}: cannot read {path}: {exc.strerror}") from exc
    return None


# Where each network's sign-in lives; production refuses any of these pointing at the sandbox.
PROVIDER_URLS = {
    "VK_API_URL": "https://api.vk.com",
    "APPLE_BASE_URL": APPLE_ID_URL,
    "APPLE_ISSUER": APPLE_ID_URL,
    "VKID_BASE_URL": "https://id.vk.com",
    "OK_CONNECT_URL": "https://connect.ok.ru",
    "OK_API_URL": "https://api.ok.ru",
    "MAILRU_OAUTH_URL": "https://oauth.mail.ru",
    "YANDEX_OAUTH_URL": "https://oauth.yandex.ru",
    "YANDEX_LOGIN_URL": "https://login.yandex.ru",
    "TELEGRAM_ISSUER": "https://oauth.telegram.org",
    "TELEGRAM_WIDGET_URL": "https://oauth.telegram.org",
    "TELEGRAM_BOT_API_URL": "https://api.telegram.org",
    "GOOGLE_ISSUER": "https://accounts.google.com",
}
PROVIDER_CREDENTIALS = (
    "VKID_CLIENT_ID",
    "OK_CLIENT_ID",
    "OK_APPLICATION_KEY",
    "OK_CLIENT_SECRET",
    "MAILRU_CLIENT_ID",
    "MAILRU_CLIENT_SECRET",
    "YANDEX_CLIENT_ID",
    "YANDEX_CLIENT_SECRET",
    "TELEGRAM_CLIENT_ID",
    "TELEGRAM_CLIENT_SECRET",
    "TELEGRAM_BOT_TOKEN",
    "GOOGLE_CLIENT_ID",
    "GOOGLE_CLIENT_SECRET",
)


class Config:
    """Settings shared by every environment; each value can be overridden by a variable."""

    ENV_NAME = "base"
    SANDBOX_ALLOWED = False

    def __init__(self) -> None:
        self.SECRET_KEY = _env("SECRET_KEY")
        # None means "SQLite in the instance folder", resolved by create_app.
        self.SQLALCHEMY_DATABASE_URI = normalise_database_url(_env("DATABASE_URL"))
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        self.TOKEN_ENCRYPTION_KEYS = _env("TOKEN_ENCRYPTION_KEYS")
        self.PROGRAMME_NAME = _env("PROGRAMME_NAME", "Loyalink")
        self.TERMS_VERSION = _env("TERMS_VERSION", "2026-12")
        self.PROGRAMME_TIMEZONE = _env("PROGRAMME_TIMEZONE", "Europe/Moscow")
        # False: a deduction stops at zero and the ledger records the shortfall.
        self.ALLOW_NEGATIVE_BALANCE = _env_bool("ALLOW_NEGATIVE_BALANCE", False)
        self.EXPIRY_WARNING_DAYS = _env_int("EXPIRY_WARNING_DAYS", 30)
        self.HTTP_TIMEOUT_SECONDS = _env_int("HTTP_TIMEOUT_SECONDS", 10)
        self.AUTH_FLOW_TTL_SECONDS = _env_int("AUTH_FLOW_TTL_SECONDS", 600)
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", True)
        self.REMEMBER_COOKIE_SECURE = self.SESSION_COOKIE_SECURE
        self.PERMANENT_SESSION_LIFETIME = _env_int("SESSION_LIFETIME_SECONDS", 14 * 24 * 3600)
        self.WTF_CSRF_TIME_LIMIT = None  # tied to the session, not a clock
        self.PREFERRED_URL_SCHEME = _env("PREFERRED_URL_SCHEME", "https")
        # Redirect URIs are built from this, never from the request's Host header.
        self.PUBLIC_URL = (_env("PUBLIC_URL") or "").rstrip("/") or None
        self.APPLE_CLIENT_ID = _env("APPLE_CLIENT_ID")
        self.APPLE_TEAM_ID = _env("APPLE_TEAM_ID")
        self.APPLE_KEY_ID = _env("APPLE_KEY_ID")
        self.APPLE_PRIVATE_KEY = _read_key("APPLE_PRIVATE_KEY", "APPLE_PRIVATE_KEY_FILE")
        for name, default in PROVIDER_URLS.items():
            setattr(self, name, _env(name, default))
        for name in PROVIDER_CREDENTIALS:
            setattr(self, name, _env(name))
        self.VK_API_VERSION = _env("VK_API_VERSION", "5.199")
        self.VK_REQUESTS_PER_SECOND = float(_env("VK_REQUESTS_PER_SECOND", "3") or 3)
        self.VK_MAX_RETRIES = _env_int("VK_MAX_RETRIES", 5)
        # The first retry waits this long, doubling each time (at most 30 s).
        self.VK_BACKOFF_SECONDS = float(_env("VK_BACKOFF_SECONDS", "0.5") or 0.5)
        self.OK_REQUESTS_PER_SECOND = float(_env("OK_REQUESTS_PER_SECOND", "5") or 5)
        self.OK_MAX_RETRIES = _env_int("OK_MAX_RETRIES", 5)
        self.OK_BACKOFF_SECONDS = float(_env("OK_BACKOFF_SECONDS", "0.5") or 0.5)
        # A callback about a removal is checked against VK while VK waits for "ok".
        self.VK_CALLBACK_CHECK_RETRIES = _env_int("VK_CALLBACK_CHECK_RETRIES", 1)
        self.VK_CALLBACK_CHECK_TIMEOUT_SECONDS = float(
            _env("VK_CALLBACK_CHECK_TIMEOUT_SECONDS", "2") or 2
        )
        # How long a callback's event_id is remembered against VK's retries.
        self.VK_CALLBACK_KEEP_DAYS = _env_int("VK_CALLBACK_KEEP_DAYS", 7)
        self.SCHEDULER_ENABLED = _env_bool("SCHEDULER_ENABLED", False)
        self.SCHEDULER_TICK_SECONDS = _env_int("SCHEDULER_TICK_SECONDS", 5)
        self.SCHEDULER_LEASE_SECONDS = _env_int("SCHEDULER_LEASE_SECONDS", 30)
        self.TELEGRAM_AUTH_MAX_AGE_SECONDS = _env_int("TELEGRAM_AUTH_MAX_AGE_SECONDS", 300)
        self.TELEGRAM_MAX_RETRIES = _env_int("TELEGRAM_MAX_RETRIES", 5)
        # The first retry waits this long, doubling each time; a 429's retry_after is honoured.
        self.TELEGRAM_BACKOFF_SECONDS = float(_env("TELEGRAM_BACKOFF_SECONDS", "0.5") or 0.5)
        # getUpdates' long-polling timeout (whole seconds; 0 answers at once).
        self.TELEGRAM_POLL_TIMEOUT_SECONDS = _env_int("TELEGRAM_POLL_TIMEOUT_SECONDS", 1)
        # Linking a profile asks for a fresh sign-in when the session is older than this.
        self.REAUTH_MAX_AGE_SECONDS = _env_int("REAUTH_MAX_AGE_SECONDS", 900)
        # Proxies in front of the portal whose X-Forwarded-For/-Proto are trusted (0: none).
        self.TRUSTED_PROXIES = _env_int("TRUSTED_PROXIES", 0)
        self.RATELIMIT_STORAGE_URI = _env("RATELIMIT_STORAGE_URI", "memory://")
        self.RATELIMIT_ENABLED = _env_bool("RATELIMIT_ENABLED", True)
        self.SIGN_IN_RATE_LIMIT = _env("SIGN_IN_RATE_LIMIT", "20 per minute")
        self.LINK_RATE_LIMIT = _env("LINK_RATE_LIMIT", "10 per minute")
        self.APPLE_CLIENT_SECRET_TTL_SECONDS = _env_int(
            "APPLE_CLIENT_SECRET_TTL_SECONDS", 30 * 24 * 3600
        )
        self.APPLE_JWKS_TTL_SECONDS = _env_int("APPLE_JWKS_TTL_SECONDS", 3600)
        # An unknown key id refetches the key set at most this often (forged kids cost little).
        self.APPLE_JWKS_MIN_REFETCH_SECONDS = _env_int("APPLE_JWKS_MIN_REFETCH_SECONDS", 30)

    def validate(self) -> None:
        """Raise ConfigError when this configuration cannot run safely."""
        try:
            ZoneInfo(self.PROGRAMME_TIMEZONE)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"PROGRAMME_TIMEZONE={self.PROGRAMME_TIMEZONE!r} is not a time zone name "
                "such as Europe/Moscow"
            ) from None
        if self.APPLE_CLIENT_SECRET_TTL_SECONDS > 15_777_000:
            raise ConfigError("APPLE_CLIENT_SECRET_TTL_SECONDS may be at most 15777000 (6 months)")


class ProductionConfig(Config):
    ENV_NAME = "production"

    def validate(self) -> None:
        super().validate()
        for name in ("SECRET_KEY", "TOKEN_ENCRYPTION_KEYS", "DATABASE_URL", "PUBLIC_URL"):
            if not _env(name):
                raise ConfigError(f"{name} is not set: production has no default for it")
        if len(self.SECRET_KEY or "") < 32:
            raise ConfigError("SECRET_KEY must be at least 32 characters long")
        if not (self.PUBLIC_URL or "").startswith("https://"):
            raise ConfigError("PUBLIC_URL must be an https:// address in production")
        for name in PROVIDER_URLS:
            if is_sandbox_url(getattr(self, name)):
                raise ConfigError(
                    f"{name} points at the sandbox ({getattr(self, name)}): "
                    "production must talk to the real provider"
                )


class DemoConfig(Config):
    """`make demo`: SQLite, the sandbox mounted at /sandbox, demo secrets from instance/."""

    ENV_NAME = "demo"
    SANDBOX_ALLOWED = True

    def __init__(self) -> None:
        super().__init__()
        self.SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", False)
        self.REMEMBER_COOKIE_SECURE = self.SESSION_COOKIE_SECURE
        self.PREFERRED_URL_SCHEME = "http"
        self.PUBLIC_URL = self.PUBLIC_URL or "http://127.0.0.1:5000"


class DevelopmentConfig(DemoConfig):
    ENV_NAME = "development"


class TestingConfig(DemoConfig):
    ENV_NAME = "testing"

    def __init__(self) -> None:
        super().__init__()
        self.TESTING = True
        # One limiter serves every app of the test process: tests that check limits enable it.
        self.RATELIMIT_ENABLED = _env_bool("RATELIMIT_ENABLED", False)
        self.SECRET_KEY = "testing-secret-key-not-for-production-000000"  # noqa: S105
        self.SQLALCHEMY_DATABASE_URI = normalise_database_url(_env("TEST_DATABASE_URL"))


CONFIGS: dict[str, type[Config]] = {
    cls.ENV_NAME: cls for cls in (ProductionConfig, DemoConfig, DevelopmentConfig, TestingConfig)
}


def is_sandbox_url(url: str | None) -> bool:
    """True for URLs that can only be the sandbox: loopback hosts or a /sandbox path."""
    if not url:
        return False
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return (
        host in {"localhost", "0.0.0.0", "::1"}  # noqa: S104 - a comparison, not a bind
        or host.startswith("127.")
        or host.endswith(".localhost")
        or "/sandbox" in parts.path
    )


def normalise_database_url(url: str | None) -> str | None:
    """Accept the common postgres:// spellings and use psycopg 3 for them."""
    if url is None:
        return None
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load_config(name: str | None = None) -> Config:
    """Build the configuration named by `name` or LOYALINK_ENV, reading .env first."""
    load_dotenv(override=False)
    name = name or _env("LOYALINK_ENV", "production")
    try:
        config_class = CONFIGS[name]
    except KeyError:
        choices = ", ".join(sorted(CONFIGS))
        raise ConfigError(f"LOYALINK_ENV={name!r} is unknown; choose one of {choices}") from None
    return config_class()
