"""Endpoints that providers call server to server. Each verifies what it receives itself."""

from __future__ import annotations

import logging

from flask import abort, jsonify, request

from app.blueprints.hooks import bp
from app.providers import ProviderError, get_provider
from app.services.apple_notifications import apply_notification, dedup_key

log = logging.getLogger(__name__)


@bp.post("/apple")
def apple_notifications():
    provider = get_provider("apple")
    if provider is None:
        abort(404, "Apple sign-in is not configured.")
    body = request.get_json(silent=True)
    payload = body.get("payload") if isinstance(body, dict) else request.form.get("payload")
    if not isinstance(payload, str) or not payload:
        abort(400, 'Expected a JSON body {"payload": "<signed JWS>"}.')
    try:
        events = provider.verify_notification(payload)
    except ProviderError as exc:
        log.warning("Apple notification refused: %s", exc)
        abort(400, str(exc))
    outcome = apply_notification(events, dedup_key(events, payload))
    return jsonify(status="ok", outcome=outcome)
