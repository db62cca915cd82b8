"""The tester page: act on OK as a sandbox person or another user (/ok-api/tester)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from sandbox.okapi.api import ok_state
from sandbox.okapi.model import Group

bp = Blueprint("okapi_tester", __name__, url_prefix="/ok-api")

TOPICS_PER_PAGE = 20


def _arg_int(source: Any, name: str) -> int | None:
    raw = (source.get(name) or "").strip()
    return int(raw) if raw.isdigit() else None


@bp.get("/tester")
def page() -> ResponseReturnValue:
    """Pick a person and a group; join, give a Klass and comment as them."""
    ok = ok_state()
    users = ok.tester_users()
    user_id = _arg_int(request.args, "user_id") or (users[0].id if users else None)
    offset = _arg_int(request.args, "offset") or 0
    if user_id is not None and all(user.id != user_id for user in users):
        users.append(ok.user(user_id))
    with ok.lock:
        groups = [ok.groups[group_id] for group_id in sorted(ok.groups)]
        group = ok.groups.get(_arg_int(request.args, "group_id") or 0)
        if group is None and groups:
            group = groups[0]
        topics = _topics(group, user_id, offset) if group and user_id else []
        rows = [{"id": g.id, "name": g.name, "members": len(g.members)} for g in groups]
        selected = None
        if group is not None:
            selected = {
                "id": group.id,
                "name": group.name,
                "members": len(group.members),
                "topics": len(group.topic_ids),
                "is_member": user_id in group.member_set,
            }
    return render_template(
        "sandbox/okapi_tester.html",
        users=users,
        user_id=user_id,
        groups=rows,
        group=selected,
        topics=topics,
        offset=offset,
        per_page=TOPICS_PER_PAGE,
        message=request.args.get("message", ""),
        error=request.args.get("error", ""),
    )


def _topics(group: Group, user_id: int, offset: int) -> list[dict[str, Any]]:
    end = max(0, len(group.topic_ids) - offset)
    rows = []
    for topic_id in reversed(group.topic_ids[max(0, end - TOPICS_PER_PAGE) : end]):
        topic = group.topics[topic_id]
        own = [c for c in topic.comments if c.author == user_id and not c.deleted]
        rows.append(
            {
                "id": topic.id,
                "date": datetime.fromtimestamp(topic.date, UTC).strftime("%Y-%m-%d %H:%M"),
                "text": topic.text,
                "likes": len(topic.likers),
                "comments": topic.live_comments,
                "liked": user_id in topic.likers,
                "own_comments": [{"id": str(c.id), "text": c.text} for c in own],
            }
        )
    return rows


@bp.post("/tester/act")
def act() -> ResponseReturnValue:
    """Do the button's action as the chosen person, then go back to the page."""
    form = request.form
    user_id, group_id = _arg_int(form, "user_id"), _arg_int(form, "group_id")
    message = error = ""
    try:
        if user_id is None or group_id is None:
            raise ValueError("pick a person and a group first")
        result = ok_state().act(
            form.get("action", ""),
            group_id=group_id,
            user_id=user_id,
            post_id=_arg_int(form, "post_id"),
            text=form.get("text", ""),
            comment_id=form.get("comment_id") or None,
        )
        message = result["message"] + ("" if result["changed"] else " (nothing changed)")
    except ValueError as exc:
        error = str(exc)
    target = url_for(
        ".page",
        user_id=user_id,
        group_id=group_id,
        offset=_arg_int(form, "offset") or None,
        message=message or None,
        error=error or None,
    )
    return redirect(target)
