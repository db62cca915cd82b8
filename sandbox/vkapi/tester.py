"""The tester page: act on VK as a sandbox person or a generated user (/vk-api/tester)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue

from sandbox.tester_pages import act_and_return, arg_int, pick_group, pick_user
from sandbox.vkapi.api import vk_state
from sandbox.vkapi.methods import newest_first
from sandbox.vkapi.model import Group

bp = Blueprint("vkapi_tester", __name__, url_prefix="/vk-api")

POSTS_PER_PAGE = 20
CALLBACK_ROWS = 8


@bp.get("/tester")
def page() -> ResponseReturnValue:
    """Pick a person and a group; like, comment, repost and join as them."""
    vk = vk_state()
    users = vk.tester_users()
    user_id = pick_user(users, lambda user: user.id, vk.user)
    offset = max(0, arg_int(request.args, "offset") or 0)
    with vk.lock:
        group, group_rows = pick_group(vk.groups)
        posts = _posts(group, user_id, offset) if group and user_id else []
        selected = None
        if group is not None:
            selected = {
                "id": group.id,
                "name": group.name,
                "screen_name": group.screen_name,
                "members": len(group.members),
                "posts": len(group.post_ids),
                "is_member": user_id in group.member_set,
            }
    return render_template(
        "sandbox/vkapi_tester.html",
        users=users,
        user_id=user_id,
        groups=group_rows,
        group=selected,
        posts=posts,
        callback=_callback(selected["id"]) if selected else None,
        offset=offset,
        per_page=POSTS_PER_PAGE,
        message=request.args.get("message", ""),
        error=request.args.get("error", ""),
    )


def _callback(group_id: int) -> dict[str, Any]:
    """The group's Callback API server and its last deliveries (confirmation included)."""
    hub = vk_state().callbacks
    server = hub.server(group_id)
    rows = [
        {
            "time": datetime.fromtimestamp(row["time"], UTC).strftime("%H:%M:%S"),
            "type": row["type"],
            "attempt": row["attempt"],
            "status": row["status"],
            "outcome": "ok" if row["ok"] else (row["answer"] or "(empty answer)"),
            "ok": row["ok"],
        }
        for row in hub.log(group_id, limit=CALLBACK_ROWS)
    ]
    return {"url": server.url if server else None, "mode": hub.mode, "deliveries": rows}


def _posts(group: Group, user_id: int, offset: int) -> list[dict[str, Any]]:
    rows = []
    for post_id in newest_first(group.post_ids, offset, POSTS_PER_PAGE):
        post = group.posts[post_id]
        own = [c for c in post.comments if c.from_id == user_id and not c.deleted]
        rows.append(
            {
                "id": post.id,
                "date": datetime.fromtimestamp(post.date, UTC).strftime("%Y-%m-%d %H:%M"),
                "text": post.text,
                "likes": len(post.likers),
                "comments": post.live_comments,
                "reposts": len(post.reposts),
                "liked": user_id in post.liker_set,
                "reposted": user_id in post.repost_by_user,
                "comments_closed": post.comments_closed,
                "own_comments": [{"id": c.id, "text": c.text} for c in own],
            }
        )
    return rows


@bp.post("/tester/act")
def act() -> ResponseReturnValue:
    """Do the button's action as the chosen person, then go back to the page."""
    form = request.form
    user_id, group_id = arg_int(form, "user_id"), arg_int(form, "group_id")
    return act_and_return(
        lambda: vk_state().act(
            form.get("action", ""),
            group_id=group_id,
            user_id=user_id,
            post_id=arg_int(form, "post_id"),
            text=form.get("text", ""),
            comment_id=arg_int(form, "comment_id"),
        ),
        missing=None if None not in (user_id, group_id) else "pick a person and a group first",
        user_id=user_id,
        group_id=group_id,
        offset=arg_int(form, "offset") or None,
    )
