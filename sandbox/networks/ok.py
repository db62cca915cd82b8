"""Odnoklassniki: OAuth at /ok-connect (https://connect.ok.ru), the API at /ok-api (api.ok.ru)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from sandbox.networks.common import (
    AuthRequest,
    authenticate,
    code_consent,
    consent_flow,
    parse_code_request,
    redeem_code,
    require_grant_type,
    store,
    token_endpoint,
)
from sandbox.networks.persons import avatar_url, full_name, person_on, profile
from sandbox.okapi import methods as okapi_methods
from sandbox.okapi.api import answer as okapi_answer

NETWORK = "ok"
TOKEN_LIFETIME = 1800
# OK's API errors: HTTP 200 with error_code and error_msg.
API_ERRORS = {
    3: "METHOD : Method is unknown",
    101: "PARAM_API_KEY : Application not exist",
    102: "PARAM_SESSION_EXPIRED : Session expired",
    104: "PARAM_SIGNATURE : Invalid signature",
}

connect_bp = Blueprint("ok_connect", __name__, url_prefix="/ok-connect")
api_bp = Blueprint("ok_api", __name__, url_prefix="/ok-api")


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def api_signature(params: Mapping[str, str], access_token: str, secret: str) -> str:
    """OK's sig: md5 of the sorted ``k=v`` pairs (no access_token, no sig) + md5(token+secret)."""
    secret_key = _md5(access_token + secret)
    pairs = sorted((k, v) for k, v in params.items() if k not in ("access_token", "sig"))
    return _md5("".join(f"{k}={v}" for k, v in pairs) + secret_key)


def _parse(params: Mapping[str, str]) -> AuthRequest:
    return parse_code_request(NETWORK, params)


@connect_bp.route("/oauth/authorize", methods=["GET", "POST"])
def authorize() -> ResponseReturnValue:
    """The OK sign-in page; the POST is the person's choice."""
    return consent_flow(NETWORK, _parse, code_consent)


@api_bp.post("/oauth/token.do")
def token() -> ResponseReturnValue:
    """Exchange a code for a session token (parameters in the query or the form)."""
    return token_endpoint(NETWORK, _exchange)


def _exchange() -> dict[str, Any]:
    values = request.values
    require_grant_type(values)
    client = authenticate(NETWORK, values.get("client_id", ""), values.get("client_secret"))
    code, _ = redeem_code(client, values)
    access, refresh = store().issue_tokens(code, lifetime=TOKEN_LIFETIME)
    return {
        "access_token": access.value,
        "token_type": "session",
        "refresh_token": refresh.value,
        "expires_in": str(TOKEN_LIFETIME),
    }


@api_bp.route("/fb.do", methods=["GET", "POST"])
def api() -> ResponseReturnValue:
    """The REST API: users.getCurrentUser here, the group data methods in sandbox.okapi;
    every call is signed."""
    params = request.values.to_dict()
    client = store().client_by_extra(NETWORK, "application_key", params.get("application_key", ""))
    if client is None:
        return _api_error(101)
    if params.get("method") in okapi_methods.METHODS:  # group data: sandbox.okapi
        return okapi_answer(params, client.client_secret or "")
    access_token = params.get("access_token", "")
    token = store().access_token(NETWORK, access_token, client.client_id)
    person = person_on(NETWORK, token.person) if token is not None else None
    if person is None:
        return _api_error(102)
    expected = api_signature(params, access_token, client.client_secret or "")
    if not hmac.compare_digest(expected, params.get("sig", "").lower()):
        return _api_error(104)
    if params.get("method") != "users.getCurrentUser":
        return _api_error(3)
    return jsonify(_current_user(person, client.extra, params.get("fields", "")))


def _current_user(person: dict[str, Any], extra: Mapping[str, Any], fields: str) -> dict:
    data = profile(person, NETWORK)
    user = {
        "uid": data["uid"],
        "first_name": data["first_name"],
        "last_name": data["last_name"],
        "name": full_name(data),
        "pic_1": avatar_url(person),
    }
    if extra.get("email_permission") and data.get("email"):
        user["email"] = data["email"]
    wanted = {f.strip().lower() for f in fields.split(",") if f.strip()}
    if wanted:
        user = {k: v for k, v in user.items() if k == "uid" or k in wanted}
    return user


def _api_error(code: int) -> ResponseReturnValue:
    return jsonify({"error_code": code, "error_msg": API_ERRORS[code], "error_data": None})
