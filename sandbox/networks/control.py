"""Control API of the networks (tests and the demo), at /control."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from sandbox import apple
from sandbox.networks.common import store

bp = Blueprint("networks_control", __name__, url_prefix="/control")


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object body")
    return body


def _string(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


def _error(message: str) -> ResponseReturnValue:
    return jsonify({"error": "invalid_request", "error_description": message}), 400


@bp.get("")
def control_page() -> ResponseReturnValue:
    """The sandbox's control page (the same as /apple/control)."""
    return apple.control_page()


@bp.post("/oauth-clients")
def register_oauth_client() -> ResponseReturnValue:
    """Register (or replace) a network client from JSON, like register_oauth_client()."""
    try:
        body = _body()
        client = store().register_client(
            _string(body, "network"),
            _string(body, "client_id"),
            client_secret=body.get("client_secret"),
            redirect_uris=body.get("redirect_uris"),
            extra=body.get("extra"),
        )
    except ValueError as exc:
        return _error(str(exc))
    return jsonify({"network": client.network, "client_id": client.client_id}), 201


@bp.post("/oidc-faults")
def oidc_fault() -> ResponseReturnValue:
    """Arm a one-shot id_token fault: ``{"network", "kind"}``."""
    try:
        body = _body()
        network, kind = _string(body, "network"), _string(body, "kind")
        store().inject_oidc_fault(network, kind)
    except ValueError as exc:
        return _error(str(exc))
    return jsonify({"network": network, "kind": kind})


@bp.post("/token-errors")
def token_error() -> ResponseReturnValue:
    """Make a network's next token request fail: ``{"network", "error"}``."""
    try:
        body = _body()
        network, error = _string(body, "network"), _string(body, "error")
        store().inject_token_error(network, error)
    except ValueError as exc:
        return _error(str(exc))
    return jsonify({"network": network, "error": error})


@bp.post("/reset")
def reset() -> ResponseReturnValue:
    """Forget codes, tokens and faults of Apple and every network."""
    current_app.extensions["sandbox"].reset()
    return jsonify({"reset": True})
