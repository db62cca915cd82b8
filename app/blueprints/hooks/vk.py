"""The VK Callback API endpoint: /hooks/vk, or /hooks/vk/<tracked group id>."""

from __future__ import annotations

from flask import Response, request

from app.blueprints.hooks import bp
from app.collect.vk_callbacks import CallbackRefused, handle_callback


@bp.post("/vk")
@bp.post("/vk/<int:tracked_group_id>")
def vk_callback(tracked_group_id: int | None = None) -> Response:
    """One URL for every community, or one per tracked group (which must match the event)."""
    try:
        result = handle_callback(request.get_json(silent=True), tracked_group_id=tracked_group_id)
    except CallbackRefused as refused:
        return Response(str(refused), status=refused.status, mimetype="text/plain")
    # VK reads the body as is: exactly "ok", or the confirmation string.
    return Response(result.answer, mimetype="text/plain")
