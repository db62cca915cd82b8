"""The sandbox: a local Flask app that plays Sign in with Apple, six social networks' sign-in
and the VK API's data methods, for development and tests."""

from __future__ import annotations

from flask import Flask, render_template

from sandbox.apple import bp
from sandbox.networks import control, mailru, oidc, ok, telegram_widget, vkid, yandex
from sandbox.networks.common import NETWORK_TITLES
from sandbox.networks.persons import bp as persons_bp
from sandbox.okapi import api as okapi
from sandbox.okapi import tester as okapi_tester
from sandbox.state import APPLE_ISSUER, SandboxState
from sandbox.telegram_bot import api as telegram_bot
from sandbox.telegram_bot import tester as telegram_bot_tester
from sandbox.vkapi import api as vkapi
from sandbox.vkapi import tester as vkapi_tester

__all__ = ["SandboxState", "create_sandbox_app"]

NETWORK_BLUEPRINTS = (
    vkid.bp,
    ok.connect_bp,
    ok.api_bp,
    mailru.bp,
    yandex.oauth_bp,
    yandex.login_bp,
    oidc.telegram_bp,
    oidc.google_bp,
    telegram_widget.bp,
    persons_bp,
    control.bp,
    vkapi.bp,
    vkapi_tester.bp,
    okapi.bp,
    okapi_tester.bp,
    telegram_bot.bp,
    telegram_bot_tester.bp,
)


def create_sandbox_app(
    *,
    issuer: str = APPLE_ISSUER,
    persons: list[dict] | None = None,
    oidc_issuers: dict[str, str] | None = None,
) -> Flask:
    """Build a sandbox app with fresh in-memory state at ``app.extensions["sandbox"]``.

    ``issuer`` is Apple's; ``oidc_issuers`` may fix the issuer of "telegram" and "google"
    (by default the external URL of their mount, e.g. http://host:port/google).
    """
    app = Flask(__name__)
    app.extensions["sandbox"] = SandboxState(
        issuer=issuer, persons=persons, oidc_issuers=oidc_issuers
    )
    app.register_blueprint(bp)
    for blueprint in NETWORK_BLUEPRINTS:
        app.register_blueprint(blueprint)

    @app.get("/", endpoint="sandbox_index")
    def index() -> str:
        state: SandboxState = app.extensions["sandbox"]
        return render_template(
            "sandbox/index.html",
            issuer=state.issuer,
            persons=state.persons,
            network_titles=NETWORK_TITLES,
        )

    return app
