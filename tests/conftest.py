"""Shared fixtures: the sandbox and the portal on live loopback ports, the database, a browser.

The database is SQLite by default (a fresh copy of a migrated file per test) or PostgreSQL with
`--postgres-url` (migrated once, truncated after each test). With CI=true a missing PostgreSQL
or Chromium fails the run instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session
from werkzeug.serving import BaseWSGIServer, make_server

from app import create_app
from app.extensions import db as _db
from sandbox import create_sandbox_app
from sandbox.portal import portal_settings, register_portal

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
APPLE_CLIENT_ID = "test.loyalink.portal"
APPLE_TEAM_ID = "TESTTEAM01"
APPLE_KEY_ID = "TESTKEY001"
TEST_CLIENT_ORIGIN = "http://localhost"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--postgres-url",
        default=None,
        help="run the database tests against this PostgreSQL database (its schema is replaced)",
    )


def unavailable(reason: str) -> None:
    """Skip on a developer's machine; fail in CI, where everything must be present."""
    if IN_CI:
        pytest.fail(f"{reason} (required in CI)", pytrace=False)
    pytest.skip(reason)


class LiveServer:
    """A WSGI app on a real loopback port, served by threads, stopped at teardown."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.target: Any = None
        self.server: BaseWSGIServer = make_server(host, 0, self._dispatch, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _dispatch(self, environ, start_response):
        return self.target(environ, start_response)

    def start(self, target: Any) -> LiveServer:
        self.target = target
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Sandbox:
    url: str
    app: Flask

    @property
    def state(self):
        return self.app.extensions["sandbox"]

    @property
    def apple_url(self) -> str:
        return f"{self.url}/apple"


@pytest.fixture(scope="session")
def apple_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="session")
def portal_server() -> Iterator[LiveServer]:
    """The port the live portal listens on; the app is plugged in per test by `live_portal`."""
    server = LiveServer()
    server.start(None)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sandbox(apple_key_pem: str, portal_server: LiveServer) -> Iterator[Sandbox]:
    # "localhost" is another site than the portal's 127.0.0.1, as Apple is in production:
    # the form_post callback is then truly cross-site in the browser tests.
    server = LiveServer()
    url = f"http://localhost:{server.port}"
    app = create_sandbox_app(issuer=f"{url}/apple")
    public_pem = (
        serialization.load_pem_private_key(apple_key_pem.encode(), None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    app.extensions["sandbox"].register_apple_client(
        APPLE_CLIENT_ID,
        team_id=APPLE_TEAM_ID,
        key_id=APPLE_KEY_ID,
        public_key_pem=public_pem,
        redirect_uris=[
            f"{TEST_CLIENT_ORIGIN}/auth/apple/callback",
            f"http://127.0.0.1:{portal_server.port}/auth/apple/callback",
        ],
        notification_url=f"http://127.0.0.1:{portal_server.port}/hooks/apple",
    )
    register_portal(
        app.extensions["sandbox"], (TEST_CLIENT_ORIGIN, f"http://127.0.0.1:{portal_server.port}")
    )
    server.start(app)
    yield Sandbox(url=url, app=app)
    server.stop()


@pytest.fixture(autouse=True)
def _reset_sandbox(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "sandbox" in request.fixturenames:
        request.getfixturevalue("sandbox").state.reset()


@pytest.fixture(scope="session")
def database_template(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database: a SQLite file to copy, or the PostgreSQL URL."""
    postgres_url = request.config.getoption("--postgres-url")
    if postgres_url:
        from config import normalise_database_url

        url = normalise_database_url(postgres_url)
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
        except Exception as exc:  # any failure means "no usable PostgreSQL"
            engine.dispose()
            unavailable(f"PostgreSQL at {postgres_url} is not usable: {exc}")
        engine.dispose()
        _migrate(url)
        yield url
        return
    path = tmp_path_factory.mktemp("db") / "template.sqlite3"
    _migrate(f"sqlite:///{path}")
    yield str(path)


def _migrate(url: str) -> None:
    from flask_migrate import upgrade

    app = create_app("testing", **_base_settings(url, "http://unused", None))
    with app.app_context():
        upgrade(directory=str(Path(__file__).resolve().parent.parent / "migrations"))
        _db.engine.dispose()


def _base_settings(database_url: str, apple_url: str, key_pem: str | None) -> dict[str, Any]:
    """Settings for a test portal; without a key, Apple is left unconfigured."""
    configured = key_pem is not None
    return {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "APPLE_CLIENT_ID": APPLE_CLIENT_ID if configured else None,
        "APPLE_TEAM_ID": APPLE_TEAM_ID if configured else None,
        "APPLE_KEY_ID": APPLE_KEY_ID if configured else None,
        "APPLE_PRIVATE_KEY": key_pem,
        "APPLE_BASE_URL": apple_url,
        "APPLE_ISSUER": apple_url,
        "APPLE_JWKS_MIN_REFETCH_SECONDS": 0,
        "PUBLIC_URL": TEST_CLIENT_ORIGIN,
        "HTTP_TIMEOUT_SECONDS": 5,
    }


@pytest.fixture
def database_url(database_template: str, tmp_path: Path) -> Iterator[str]:
    if database_template.startswith("postgresql"):
        yield database_template
        engine = create_engine(database_template)
        with engine.begin() as connection:
            tables = connection.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ).scalars()
            names = ", ".join(f'"{name}"' for name in tables if name != "alembic_version")
            # TRUNCATE does not fire the ledger's row triggers: the append-only rule stays on.
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        engine.dispose()
        return
    copy = tmp_path / "loyalink.sqlite3"
    shutil.copyfile(database_template, copy)
    yield f"sqlite:///{copy}"


@pytest.fixture
def settings(database_url: str, sandbox: Sandbox, apple_key_pem: str) -> dict[str, Any]:
    """The portal's configuration overrides; a test may change them before using `app`."""
    return {
        **_base_settings(database_url, sandbox.apple_url, apple_key_pem),
        **portal_settings(sandbox.url),
    }


@pytest.fixture
def app(settings: dict[str, Any]) -> Iterator[Flask]:
    # No app context is held for the test: requests must each get their own `g`, as in
    # production. Tests that call services directly open `with app.app_context():`.
    app = create_app("testing", **settings)
    yield app
    with app.app_context():
        _db.engine.dispose()


class FreshSession(Session):
    """The test's own view of the database: every read sees what the portal has committed."""

    def _forget_unless_pending(self) -> None:
        if not (self.new or self.dirty or self.deleted):
            self.rollback()

    def execute(self, *args, **kwargs):
        self._forget_unless_pending()
        return super().execute(*args, **kwargs)

    def get(self, *args, **kwargs):
        self._forget_unless_pending()
        return super().get(*args, **kwargs)


@dataclass
class TestDatabase:
    session: FreshSession


@pytest.fixture
def db(app: Flask, database_url: str) -> Iterator[TestDatabase]:
    engine = create_engine(database_url)
    session = FreshSession(engine)
    yield TestDatabase(session)
    session.close()
    engine.dispose()


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def live_portal(settings: dict[str, Any], portal_server: LiveServer) -> Iterator[tuple[str, Flask]]:
    """The portal served on its loopback port, as a browser and Apple's servers reach it."""
    url = f"http://127.0.0.1:{portal_server.port}"
    settings["PUBLIC_URL"] = url
    app = create_app("testing", **settings)
    portal_server.target = app
    yield url, app
    portal_server.target = None
    with app.app_context():
        _db.engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        unavailable(f"Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
