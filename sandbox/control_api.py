"""What the JSON control endpoints of the sandbox share: reading a request's JSON body, the
400 answer for a bad one, and the endpoints that the data APIs (VK, OK, Telegram Bot API)
have alike: faults, request counts, clear, and (VK and OK) tokens and the rate limit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue


def json_body() -> dict[str, Any]:
    """The request's JSON object; ValueError for anything else."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object body")
    return body


def int_field(body: dict[str, Any], name: str, default: int | None = None) -> int:
    """An integer member of the body (not a bool); ValueError otherwise."""
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer")
    return value


def optional_int(body: dict[str, Any], name: str) -> int | None:
    """An integer member of the body, or None when it is absent or null."""
    return None if body.get(name) is None else int_field(body, name)


def invalid(message: str) -> ResponseReturnValue:
    """The control endpoints' answer to a bad request."""
    return jsonify({"error": "invalid_request", "error_description": message}), 400


def add_state_controls(
    bp: Blueprint,
    state: Callable[[], Any],
    *,
    access: bool = False,
    telegram: bool = False,
    codes_name: str = "error codes",
) -> None:
    """Add ``/control/faults``, ``/control/counts`` and ``/control/clear`` to a data API's
    blueprint, and with ``access`` (VK, OK) ``/control/tokens`` and ``/control/rate-limit``.

    ``telegram`` takes ``{"lost_answers"}``, an error's ``retry_after`` and a rate's
    ``timeout`` too; ``codes_name`` is what the rate's ``codes`` list holds."""

    def faults() -> ResponseReturnValue:
        """Arm faults: ``{"error_code", "method"?, "times"?}``, ``{"timeout", "times"?}`` or
        ``{"rate", "seed"?, "codes"?}`` (Telegram also ``"retry_after"`` with an error code,
        ``{"lost_answers"}`` and a rate's ``"timeout"``); DELETE drops them all."""
        api = state()
        if request.method == "DELETE":
            api.clear_faults()
            return jsonify({"cleared": True})
        try:
            body = json_body()
            _arm_faults(api, body, telegram=telegram, codes_name=codes_name)
        except ValueError as exc:
            return invalid(str(exc))
        return jsonify({"armed": body})

    def counts() -> ResponseReturnValue:
        """GET: requests per method and "total" (VK: "execute" too; Telegram: "webhook"
        deliveries); DELETE: start from zero."""
        if request.method == "DELETE":
            state().reset_counts()
        return jsonify(state().request_counts)

    def clear() -> ResponseReturnValue:
        """Forget the API's data, faults and counts (VK and OK keep tokens and the rate
        limit)."""
        state().clear()
        return jsonify({"cleared": True})

    bp.add_url_rule("/control/faults", "faults", faults, methods=["POST", "DELETE"])
    bp.add_url_rule("/control/counts", "counts", counts, methods=["GET", "DELETE"])
    bp.add_url_rule("/control/clear", "clear", clear, methods=["POST"])
    if not access:
        return

    def register_token() -> ResponseReturnValue:
        """Accept an access token: ``{"token", "kind"?}`` (VK: "user", "service" or "group",
        "user" by default; OK: "group" or "user", "group" by default)."""
        api = state()
        try:
            body = json_body()
            kind = str(body.get("kind", api.DEFAULT_ACCESS_KIND))
            api.register_token(str(body.get("token", "")), kind=kind)
        except ValueError as exc:
            return invalid(str(exc))
        return jsonify({"token": body["token"], "kind": kind}), 201

    def rate_limit() -> ResponseReturnValue:
        """Set the per-token limit: ``{"per_second": 3.0}`` or ``{"per_second": null}``
        (off)."""
        try:
            value = json_body().get("per_second")
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ValueError("per_second must be a number or null")
        except ValueError as exc:
            return invalid(str(exc))
        state().rate_limit_per_second = None if value is None else float(value)
        return jsonify({"per_second": state().rate_limit_per_second})

    bp.add_url_rule("/control/tokens", "register_token", register_token, methods=["POST"])
    bp.add_url_rule("/control/rate-limit", "rate_limit", rate_limit, methods=["POST"])


def _arm_faults(api: Any, body: dict[str, Any], *, telegram: bool, codes_name: str) -> None:
    times = int_field(body, "times", 1)
    if "error_code" in body:
        extra = {"retry_after": optional_int(body, "retry_after")} if telegram else {}
        api.inject_error(
            int_field(body, "error_code"), method=body.get("method"), times=times, **extra
        )
    elif "timeout" in body and not (telegram and "rate" in body):
        api.inject_timeout(body["timeout"], times)
    elif telegram and "lost_answers" in body:
        api.inject_lost_answers(int_field(body, "lost_answers"))
    elif "rate" in body:
        codes = body.get("codes", list(api.DEFAULT_FAULT_CODES))
        if not isinstance(codes, list):
            raise ValueError(f"codes must be a list of {codes_name}")
        extra = {"timeout": body.get("timeout")} if telegram else {}
        api.set_fault_rate(body["rate"], seed=int_field(body, "seed", 0), codes=codes, **extra)
    else:
        kinds = (
            "error_code, timeout, lost_answers or rate"
            if telegram
            else "error_code, timeout or rate"
        )
        raise ValueError(f"expected {kinds}")
