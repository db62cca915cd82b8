"""The Telegram webhook: one URL per tracked channel, /hooks/telegram/<tracked group id>.

Telegram sends the secret token given to setWebhook in X-Telegram-Bot-Api-Secret-Token; it is
compared in constant time with the one kept (encrypted) on the group, and anything else is
refused with 403 before the body is read. Telegram redelivers an update until it gets a 2xx,
so the same update may come more than once: its update_id key makes it one event.
"""

from __future__ import annotations

import hmac
import logging

from flask import abort, jsonify, request
from flask.typing import ResponseReturnValue

from app.blueprints.hooks import bp
from app.collect.telegram import apply_webhook_update, json_update
from app.extensions import db
from app.models import TrackedGroup
from app.services.crypto import CipherError, decrypt_text

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name


@bp.post("/telegram/<int:tracked_group_id>")
def telegram_update(tracked_group_id: int) -> ResponseReturnValue:
    group = db.session.get(TrackedGroup, tracked_group_id)
    if group is None or group.network != "telegram":
        abort(404, "No tracked Telegram channel has this id.")
    if not _secret_matches(group, request.headers.get(SECRET_HEADER, "")):
        log.warning(
            "Telegram update for group %s refused: wrong or missing secret token from %s",
            tracked_group_id,
            request.remote_addr,
        )
        abort(403, "The secret token is wrong or missing. Nothing was changed.")
    update = json_update(request.get_data(cache=False))
    if update is None:
        abort(400, 'Expected a Telegram Update: a JSON object with an integer "update_id".')
    recorded = apply_webhook_update(group, update)
    log.info(
        "Telegram update %s for group %s: %s new events", update["update_id"], group.id, recorded
    )
    return jsonify(ok=True)


def _secret_matches(group: TrackedGroup, received: str) -> bool:
    """Without a stored secret (no webhook was set through the portal) nothing matches."""
    if group.callback_secret_encrypted is None or not received:
        return False
    try:
        expected = decrypt_text(group.callback_secret_encrypted)
    except CipherError:
        log.error("the webhook secret of group %s cannot be decrypted", group.id)
        return False
    return hmac.compare_digest(expected.encode(), received.encode())
