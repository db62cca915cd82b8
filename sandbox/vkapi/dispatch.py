"""One VK API request from start to answer: counts, timeouts, version, token, rate limit,
faults, then the method or ``execute``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sandbox.vkapi import script
from sandbox.vkapi.methods import METHODS, USER_OR_SERVICE_ONLY, VkError, invalid
from sandbox.vkapi.model import API_VERSION, WHOLE_REQUEST_CODES, VkApiState

EXECUTE = "execute"
NO_GROUP_AUTH = "Access denied: this method is not available with a group token"


def handle(vk: VkApiState, method: str, params: Mapping[str, str]) -> dict[str, Any]:
    """The JSON body VK answers (always with HTTP 200): ``{"response": ...}`` or ``{"error"}``."""
    vk.record(method)
    delay = vk.take_timeout()
    if delay:
        time.sleep(delay)
    try:
        return _process(vk, method, params)
    except VkError as exc:
        return {"error": error_body(exc, method, params)}


def error_body(exc: VkError, method: str, params: Mapping[str, str]) -> dict[str, Any]:
    """VK's error object, echoing the request's parameters except the token."""
    echoed = [{"key": "method", "value": method}, {"key": "oauth", "value": "1"}]
    echoed += [
        {"key": key, "value": value} for key, value in params.items() if key != "access_token"
    ]
    return {"error_code": exc.code, "error_msg": exc.message, "request_params": echoed}


def _process(vk: VkApiState, method: str, params: Mapping[str, str]) -> dict[str, Any]:
    if method != EXECUTE and method not in METHODS:
        raise VkError(3)
    _check_version(params.get("v", "").strip())
    token = params.get("access_token", "").strip()
    if not token:
        raise VkError(5, "User authorization failed: no access_token passed.")
    kind = vk.token_kind(token)
    if kind is None:
        raise VkError(5, "User authorization failed: invalid access_token (4).")
    if not vk.allow_request(token):
        raise VkError(6)
    code = vk.random_fault()
    if code is not None:
        raise VkError(code)
    if method == EXECUTE:
        fault = vk.take_fault(EXECUTE, wildcard=False)
        if fault is not None:
            raise VkError(fault.code, fault.message)
        return _execute(vk, params, kind)
    return {"response": _call(vk, method, params, kind)}


def _check_version(version: str) -> None:
    if not version:
        raise VkError(8, "Invalid request: v is required")
    if version == API_VERSION:
        return
    try:
        old = float(version) < 5.0
    except ValueError:
        old = False
    if old:
        raise VkError(8, "Invalid request: versions below 5.0 are deprecated")
    raise VkError(8, f"Invalid request: the sandbox plays only v={API_VERSION}, got {version}")


def _call(vk: VkApiState, method: str, params: Mapping[str, str], kind: str) -> Any:
    fault = vk.take_fault(method)
    if fault is not None:
        raise VkError(fault.code, fault.message)
    if kind == "group" and method in USER_OR_SERVICE_ONLY:
        raise VkError(15, NO_GROUP_AUTH)
    with vk.lock:
        return METHODS[method](vk, params)


def _execute(vk: VkApiState, params: Mapping[str, str], kind: str) -> dict[str, Any]:
    code = params.get("code", "")
    if not code.strip():
        raise invalid("code is undefined")
    try:
        tree = script.parse(code)
    except script.TooManyCalls:
        raise VkError(
            13, "Runtime error occurred during code invocation: too many API calls"
        ) from None
    except script.ScriptError:
        raise VkError(12) from None
    errors: list[dict[str, Any]] = []
    response = _evaluate(vk, tree, kind, params.get("v", ""), errors)
    answer: dict[str, Any] = {"response": response}
    if errors:
        answer["execute_errors"] = errors
    return answer


def _evaluate(
    vk: VkApiState, node: script.Node, kind: str, version: str, errors: list[dict[str, Any]]
) -> Any:
    if isinstance(node, list):
        return [_evaluate(vk, item, kind, version, errors) for item in node]
    if isinstance(node, script.Literal):
        return node.value
    vk.record(node.method, request=False)
    try:
        if node.method not in METHODS:
            raise VkError(3)
        return _call(vk, node.method, {"v": version, **script.params_of(node)}, kind)
    except VkError as exc:
        if exc.code in WHOLE_REQUEST_CODES:
            raise
        errors.append({"method": node.method, "error_code": exc.code, "error_msg": exc.message})
        return False
