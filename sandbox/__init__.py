"""Sandbox Apple ID: a local Flask app that plays Sign in with Apple for development and tests."""

from __future__ import annotations

from flask import Flask, render_template

from sandbox.apple import bp
from sandbox.state import APPLE_ISSUER, SandboxState

__all__ = ["SandboxState", "create_sandbox_app"]


def create_sandbox_app(*, issuer: str = APPLE_ISSUER, persons: list[dict] | None = None) -> Flask:
    """Build a sandbox app with fresh in-memory state at ``app.extensions["sandbox"]``."""
    app = Flask(__name__)
    app.extensions["sandbox"] = SandboxState(issuer=issuer, persons=persons)
    app.register_blueprint(bp)

    @app.get("/", endpoint="sandbox_index")
    def index() -> str:
        state: SandboxState = app.extensions["sandbox"]
        return render_template("sandbox/index.html", issuer=state.issuer, persons=state.persons)

    return app
