"""The start of a tester action that the VK and OK states share: check the action, name the
user, join or leave the group, or comment on a post (a VK post, an OK topic)."""

from __future__ import annotations

from typing import Any


def start_group_act(
    state: Any,
    action: str,
    actions: tuple[str, ...],
    *,
    group_id: int,
    user_id: int,
    post_id: int | None,
    text: str,
    post_noun: str,
) -> tuple[str, dict[str, Any] | None]:
    """The user's name and, for join, leave and comment, the action's result; None for an
    action left to the caller, which then has a ``post_id``. ValueError for a bad one."""
    if action not in actions:
        raise ValueError(f"unknown action {action!r}; expected one of {list(actions)}")
    who = state.user(user_id)
    name = f"{who.first_name} {who.last_name}"
    if action in ("join", "leave"):
        changed = (state.join if action == "join" else state.leave)(group_id, user_id)
        verb = "joined" if action == "join" else "left"
        return name, {"changed": changed, "message": f"{name} {verb} group {group_id}."}
    if post_id is None:
        raise ValueError(f"{action} needs a post_id")
    if action == "comment":
        new_id = state.comment(group_id, post_id, user_id, text)
        message = f"{name} commented on {post_noun} {post_id} (comment {new_id})."
        return name, {"changed": True, "comment_id": new_id, "message": message}
    return name, None
