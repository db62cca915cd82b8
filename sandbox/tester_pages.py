"""What the tester pages of the sandbox data APIs (VK, OK, Telegram) share: reading ids from
the query or the form, picking the person to act as, and doing a button's action."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import redirect, request, url_for
from flask.typing import ResponseReturnValue

User = TypeVar("User")


def arg_int(source: Any, name: str, *, signed: bool = True) -> int | None:
    """An integer from a query or a form; None when absent or not a number (and, unless
    ``signed``, when it is anything but digits)."""
    raw = (source.get(name) or "").strip()
    if not signed:
        return int(raw) if raw.isdigit() else None
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def pick_user(
    users: list[User],
    id_of: Callable[[User], int],
    fetch: Callable[[int], User],
    *,
    signed: bool = True,
) -> int | None:
    """The ``user_id`` of the query, or the first offered user; one not offered is added to
    ``users``."""
    user_id = arg_int(request.args, "user_id", signed=signed) or (
        id_of(users[0]) if users else None
    )
    if user_id is not None and all(id_of(user) != user_id for user in users):
        users.append(fetch(user_id))
    return user_id


def act_and_return(
    act: Callable[[], dict[str, Any]], *, missing: str | None, **query: Any
) -> ResponseReturnValue:
    """Do ``act`` (unless ``missing`` says what the form lacks), then go back to the page with
    ``query`` and the action's message or error."""
    message = error = ""
    try:
        if missing:
            raise ValueError(missing)
        result = act()
        message = result["message"] + ("" if result["changed"] else " (nothing changed)")
    except ValueError as exc:
        error = str(exc)
    return redirect(url_for(".page", **query, message=message or None, error=error or None))


def pick_group(groups: dict[int, Any], *, signed: bool = True) -> tuple[Any, list[dict[str, Any]]]:
    """The ``group_id`` of the query (or the first group) and the rows of the group picker;
    callers hold the state's lock."""
    ordered = [groups[group_id] for group_id in sorted(groups)]
    group = groups.get(arg_int(request.args, "group_id", signed=signed) or 0)
    if group is None and ordered:
        group = ordered[0]
    rows = [{"id": g.id, "name": g.name, "members": len(g.members)} for g in ordered]
    return group, rows
