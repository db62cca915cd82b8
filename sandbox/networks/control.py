"""Control API of the networks (tests and the demo), at /control."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from sandbox import apple
from sandbox.control_api import invalid, json_body
from sandbox.networks.common import store

bp = Blueprint("networks_control", __name__, url_prefix="/control")


def _string(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


@bp.get("")
def control_page() -> ResponseReturnValue:
    """The sandbox's control page (the same as /apple/control)."""
    return apple.control_page()


@bp.post("/oauth-clients")
def register_oauth_client() -> ResponseReturnValue:
    """Register (or replace) a network client from JSON, like register_oauth_client()."""
    try:
        body = json_body()
        client = store().register_client(
            _string(body, "network"),
            _string(body, "client_id"),
            client_secret=body.get("client_secret"),
            redirect_uris=body.get("redirect_uris"),
            extra=body.get("extra"),
        )
    except ValueError as exc:
        return invalid(str(exc))
    return jsonify({"network": client.network, "client_id": client.client_id}), 201


@bp.post("/oidc-faults")
def oidc_fault() -> ResponseReturnValue:
    """Arm a one-shot id_token fault: ``{"network", "kind"}``."""
    try:
        body = json_body()
        network, kind = _string(body, "network"), _string(body, "kind")
        store().inject_oidc_fault(network, kind)
    except ValueError as exc:
        return invalid(str(exc))
    return jsonify({"network": network, "kind": kind})


@bp.post("/token-errors")
def token_error() -> ResponseReturnValue:
    """Make a network's next token request fail: ``{"network", "error"}``."""
    try:
        body = json_body()
        network, error = _string(body, "network"), _string(body, "error")
        store().inject_token_error(network, error)
    except ValueError as exc:
        return invalid(str(exc))
    return jsonify({"network": network, "error": error})


@bp.post("/reset")
def reset() -> ResponseReturnValue:
    """Forget codes, tokens and faults of Apple and every network."""
    current_app.extensions["sandbox"].reset()
    return jsonify({"reset": True})
