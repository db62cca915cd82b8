"""The VK Callback API endpoint: one URL for every tracked VK community."""

from __future__ import annotations

from flask import Response, request

from app.blueprints.hooks import bp
from app.collect.vk_callbacks import CallbackRefused, handle_callback


@bp.post("/vk")
def vk_callback() -> Response:
    try:
        result = handle_callback(request.get_json(silent=True))
    except CallbackRefused as refused:
        return Response(str(refused), status=refused.status, mimetype="text/plain")
    # VK reads the body as is: exactly "ok", or the confirmation string.
    return Response(result.answer, mimetype="text/plain")
