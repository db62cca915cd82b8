"""Loyalink: the members' Personal Account and the programme's staff area."""

from __future__ import annotations

import logging
import os
from typing import Any

import click
from flask import Flask
from sqlalchemy import event
from werkzeug.middleware.proxy_fix import ProxyFix

from config import Config, load_config


def create_app(config: Config | str | None = None, **overrides: Any) -> Flask:
    """Build the portal. `config` is a Config, an environment name, or None for LOYALINK_ENV."""
    app = Flask(__name__, instance_relative_config=True)
    register_config(app, config, overrides)
    register_logging(app)
    register_proxy(app)
    register_extensions(app)
    register_providers(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_template_helpers(app)
    register_commands(app)
    register_scheduler(app)
    return app


def register_config(app: Flask, config: Config | str | None, overrides: dict[str, Any]) -> None:
    if not isinstance(config, Config):
        config = load_config(config)
    config.validate()
    app.config.from_object(config)
    app.config["ENV_NAME"] = config.ENV_NAME
    app.config["SANDBOX_ALLOWED"] = config.SANDBOX_ALLOWED
    app.config.update(overrides)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        os.makedirs(app.instance_path, exist_ok=True)
        path = os.path.join(app.instance_path, "loyalink.sqlite3")
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{path}"
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError("SECRET_KEY is not set")


def register_proxy(app: Flask) -> None:
    """Behind a reverse proxy the client's address is in X-Forwarded-For: trust exactly as
    many hops as configured, so rate limits count visitors, not the proxy."""
    hops = app.config["TRUSTED_PROXIES"]
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)


def register_logging(app: Flask) -> None:
    if not app.debug and not app.testing:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )


def register_extensions(app: Flask) -> None:
    from app import models  # noqa: F401 - the models must be known before migrate binds
    from app.extensions import csrf, db, limiter, login_manager, migrate
    from app.services.crypto import init_cipher

    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)
    init_cipher(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _sqlite_pragmas)

    from app.auth_loading import configure_login

    configure_login(login_manager)


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """WAL lets readers work while a writer commits; foreign keys are off by default."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def register_providers(app: Flask) -> None:
    from app.providers import init_providers

    init_providers(app)


def register_blueprints(app: Flask) -> None:
    from app.blueprints import account, auth, hooks, main, ops, staff
    from app.extensions import csrf

    app.register_blueprint(main.bp)
    app.register_blueprint(auth.bp, url_prefix="/auth")
    app.register_blueprint(account.bp, url_prefix="/account")
    app.register_blueprint(staff.bp, url_prefix="/staff")
    app.register_blueprint(hooks.bp, url_prefix="/hooks")
    app.register_blueprint(ops.bp, url_prefix="/ops")
    # Providers post here across sites without our CSRF token; each view verifies what it gets.
    csrf.exempt(hooks.bp)
    csrf.exempt("app.blueprints.auth.views.callback")


def register_error_handlers(app: Flask) -> None:
    from app.errors import register

    register(app)


def register_template_helpers(app: Flask) -> None:
    from app.template_helpers import register

    register(app)


def register_scheduler(app: Flask) -> None:
    """Start the in-process scheduler when configured; the database lease picks one leader.

    Only in a serving process (gunicorn, `flask run`): not in `flask db upgrade` and the like.
    """
    if not app.config["SCHEDULER_ENABLED"] or app.testing:
        return
    command = click.get_current_context(silent=True)
    if command is not None and command.info_name != "run":
        return
    from app.collect.scheduler import start_scheduler

    start_scheduler(app)


def register_commands(app: Flask) -> None:
    from app.cli import register

    register(app)
