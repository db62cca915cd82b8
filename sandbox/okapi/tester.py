"""The tester page: act on OK as a sandbox person or another user (/ok-api/tester)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue

from sandbox.okapi.api import ok_state
from sandbox.okapi.model import Group
from sandbox.tester_pages import act_and_return, arg_int, pick_group, pick_user

bp = Blueprint("okapi_tester", __name__, url_prefix="/ok-api")

TOPICS_PER_PAGE = 20


@bp.get("/tester")
def page() -> ResponseReturnValue:
    """Pick a person and a group; join, give a Klass and comment as them."""
    ok = ok_state()
    users = ok.tester_users()
    user_id = pick_user(users, lambda user: user.id, ok.user, signed=False)
    offset = _arg_int(request.args, "offset") or 0
    with ok.lock:
        group, rows = pick_group(ok.groups, signed=False)
        topics = _topics(group, user_id, offset) if group and user_id else []
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
    return act_and_return(
        lambda: ok_state().act(
            form.get("action", ""),
            group_id=group_id,
            user_id=user_id,
            post_id=_arg_int(form, "post_id"),
            text=form.get("text", ""),
            comment_id=form.get("comment_id") or None,
        ),
        missing=None if None not in (user_id, group_id) else "pick a person and a group first",
        user_id=user_id,
        group_id=group_id,
        offset=_arg_int(form, "offset") or None,
    )


def _arg_int(source: Any, name: str) -> int | None:
    """OK's ids are unsigned: anything but digits is no id."""
    return arg_int(source, name, signed=False)
