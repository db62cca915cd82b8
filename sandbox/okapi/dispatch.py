"""One OK API data request at /ok-api/fb.do: token, signature, rate limit, faults, quota, then
the method. The application (and so its secret key) was found by application_key already."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

from sandbox.okapi.methods import METHODS, QUOTA_FREE, OkError
from sandbox.okapi.model import OkApiState


def signature(params: Mapping[str, str], access_token: str, secret: str) -> str:
    """OK's sig: md5 of the sorted ``k=v`` pairs without sig and access_token, followed by
    md5(access_token + application secret key), all lower-case hex."""
    session_secret = _md5(access_token + secret)
    pairs = sorted((k, v) for k, v in params.items() if k not in ("access_token", "sig"))
    return _md5("".join(f"{k}={v}" for k, v in pairs) + session_secret)


def handle(ok: OkApiState, params: Mapping[str, str], secret: str) -> Any:
    """The JSON body OK answers (always with HTTP 200): the method's result or an error."""
    method = params.get("method", "")
    ok.record(method)
    delay = ok.take_timeout()
    if delay:
        time.sleep(delay)
    try:
        return _process(ok, method, params, secret)
    except OkError as exc:
        return exc.body()


def _process(ok: OkApiState, method: str, params: Mapping[str, str], secret: str) -> Any:
    token = params.get("access_token", "")
    if not token or ok.token_kind(token) is None:
        raise OkError(102)
    if not hmac.compare_digest(signature(params, token, secret), params.get("sig", "").lower()):
        raise OkError(104)
    if method not in METHODS:
        raise OkError(3)
    if not ok.allow_request(token):
        raise OkError(8)
    code = ok.take_fault(method)
    if code is not None:
        raise OkError(code)
    if method not in QUOTA_FREE and not ok.take_call(method):
        raise OkError(11, f"{method} has no calls left today")
    with ok.lock:
        return METHODS[method](ok, params)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
