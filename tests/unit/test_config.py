"""Configuration: production has no secret defaults and never talks to the sandbox."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from config import (
    ConfigError,
    ProductionConfig,
    is_sandbox_url,
    load_config,
    normalise_database_url,
)

GOOD_PRODUCTION = {
    "SECRET_KEY": "s" * 40,
    "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "DATABASE_URL": "postgresql://loyalink@db/loyalink",
    "PUBLIC_URL": "https://loyalty.example.com",
}


@pytest.fixture
def production_env(monkeypatch):
    for name in ("APPLE_BASE_URL", "APPLE_ISSUER", "LOYALINK_ENV"):
        monkeypatch.delenv(name, raising=False)
    for name, value in GOOD_PRODUCTION.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_production_config_with_everything_set_is_valid(production_env):
    config = ProductionConfig()
    config.validate()
    assert config.SQLALCHEMY_DATABASE_URI == "postgresql+psycopg://loyalink@db/loyalink"
    assert config.SESSION_COOKIE_SECURE is True and config.SESSION_COOKIE_HTTPONLY is True
    assert config.SESSION_COOKIE_SAMESITE == "Lax"


@pytest.mark.parametrize("missing", sorted(GOOD_PRODUCTION))
def test_production_refuses_to_start_without_a_secret(production_env, missing):
    production_env.delenv(missing)
    with pytest.raises(ConfigError, match=missing):
        ProductionConfig().validate()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("APPLE_BASE_URL", "http://127.0.0.1:5000/sandbox/apple"),
        ("APPLE_BASE_URL", "http://localhost:8000/apple"),
        ("APPLE_ISSUER", "https://portal.example.com/sandbox/apple"),
    ],
)
def test_production_refuses_sandbox_urls(production_env, name, value):
    production_env.setenv(name, value)
    with pytest.raises(ConfigError, match=f"{name} points at the sandbox"):
        ProductionConfig().validate()


def test_production_refuses_plain_http_public_url(production_env):
    production_env.setenv("PUBLIC_URL", "http://loyalty.example.com")
    with pytest.raises(ConfigError, match="https"):
        ProductionConfig().validate()


def test_production_refuses_a_short_secret_key(production_env):
    production_env.setenv("SECRET_KEY", "short")
    with pytest.raises(ConfigError, match="at least 32"):
        ProductionConfig().validate()


def test_unknown_environment_name_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("LOYALINK_ENV", "staging")
    with pytest.raises(ConfigError, match="LOYALINK_ENV='staging' is unknown"):
        load_config()


def test_bad_integer_names_the_variable(monkeypatch):
    monkeypatch.setenv("HTTP_TIMEOUT_SECONDS", "ten")
    with pytest.raises(ConfigError, match="HTTP_TIMEOUT_SECONDS must be an integer"):
        load_config("demo")


def test_client_secret_lifetime_is_capped_at_six_months(monkeypatch):
    monkeypatch.setenv("APPLE_CLIENT_SECRET_TTL_SECONDS", str(15_777_001))
    with pytest.raises(ConfigError, match="at most 15777000"):
        load_config("demo").validate()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://appleid.apple.com", False),
        ("http://127.0.0.1:5000/sandbox/apple", True),
        ("http://localhost:41000/apple", True),
        ("https://portal.example.com/sandbox/apple", True),
        (None, False),
    ],
)
def test_is_sandbox_url(url, expected):
    assert is_sandbox_url(url) is expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql://u@h/d", "postgresql+psycopg://u@h/d"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_database_url_uses_psycopg3(url, expected):
    assert normalise_database_url(url) == expected


def test_production_app_fails_loudly_at_start(production_env):
    from app import create_app

    production_env.delenv("SECRET_KEY")
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        create_app("production")


def test_half_configured_apple_is_refused(production_env, tmp_path):
    from app import create_app

    production_env.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    production_env.setenv("APPLE_CLIENT_ID", "com.example.web")
    with pytest.raises(ValueError, match="half configured: set APPLE_TEAM_ID"):
        create_app("production")


def test_unknown_time_zone_is_refused(monkeypatch):
    monkeypatch.setenv("PROGRAMME_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigError, match="PROGRAMME_TIMEZONE='Mars/Olympus' is not a time zone"):
        load_config("demo").validate()
