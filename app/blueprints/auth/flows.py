"""Sign-in flows in flight, kept in the browser's session: state is random, single use, bound
to this browser, and several flows may be open at once (two tabs)."""

from __future__ import annotations

import enum
import secrets
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from app.providers.base import AuthorizationRequest

FLOWS_KEY = "auth_flows"
MAX_FLOWS_IN_FLIGHT = 5


class FlowError(Exception):
    """The callback does not belong to a sign-in this browser started."""


class Intent(enum.StrEnum):
    SIGN_IN = "sign_in"
    LINK = "link"  # a signed-in member adds a profile
    REAUTH = "reauth"  # a signed-in member proves it is them before linking


@dataclass(frozen=True)
class Flow:
    provider: str
    request: AuthorizationRequest
    next_url: str | None
    member_id: int | None  # the signed-in member linking or re-authenticating
    intent: Intent


def begin_flow(
    session: MutableMapping[str, Any],
    provider: str,
    redirect_uri: str,
    next_url: str | None,
    member_id: int | None,
    intent: Intent,
) -> AuthorizationRequest:
    flows = dict(session.get(FLOWS_KEY, {}))
    if len(flows) >= MAX_FLOWS_IN_FLIGHT:
        oldest = min(flows, key=lambda key: flows[key]["t"])
        flows.pop(oldest)
    request = AuthorizationRequest(
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        redirect_uri=redirect_uri,
        code_verifier=secrets.token_urlsafe(48),
    )
    flows[request.state] = {
        "p": provider,
        "n": request.nonce,
        "v": request.code_verifier,
        "r": redirect_uri,
        "next": next_url,
        "m": member_id,
        "i": intent.value,
        "t": time.time(),
    }
    session[FLOWS_KEY] = flows
    return request


def take_flow(
    session: MutableMapping[str, Any], provider: str, state: str | None, ttl_seconds: int
) -> Flow:
    """Remove and return the flow this state names; it can never be used again."""
    if not state:
        raise FlowError("The answer from the provider carried no state, so it cannot be trusted.")
    flows = dict(session.get(FLOWS_KEY, {}))
    data = flows.pop(state, None)
    session[FLOWS_KEY] = flows
    if data is None:
        raise FlowError(
            "This sign-in was not started in this browser, or it was already completed. "
            "Please start again."
        )
    if data["p"] != provider:
        raise FlowError(
            "This answer came back for a different provider than the one you chose, "
            "so it was refused. Please start again."
        )
    if time.time() - data["t"] > ttl_seconds:
        raise FlowError("This sign-in took too long and has expired. Please start again.")
    request = AuthorizationRequest(
        state=state, nonce=data["n"], redirect_uri=data["r"], code_verifier=data["v"]
    )
    return Flow(
        provider=data["p"],
        request=request,
        next_url=data["next"],
        member_id=data["m"],
        intent=Intent(data["i"]),
    )
