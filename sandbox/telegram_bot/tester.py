"""The tester page: act on a sandbox Telegram channel as a person (/telegram-bot-api/tester)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue

from sandbox.telegram_bot.api import telegram_state
from sandbox.telegram_bot.model import MEMBER_STATUSES, REACTION_EMOJI, Chat
from sandbox.tester_pages import act_and_return, arg_int, pick_user

bp = Blueprint("telegram_bot_tester", __name__, url_prefix="/telegram-bot-api")

POSTS_SHOWN = 20


@bp.get("/tester")
def page() -> ResponseReturnValue:
    """Pick a person and a channel; join, react and comment as them."""
    state = telegram_state()
    users = state.tester_users()
    user_id = pick_user(users, lambda user: user["id"], state.user_json)
    with state.lock:
        channels = [chat for chat in state.chats.values() if chat.type == "channel"]
        channel = state.chats.get(arg_int(request.args, "chat_id") or 0)
        if (channel is None or channel.type != "channel") and channels:
            channel = channels[0]
        selected = _channel_view(state, channel, user_id) if channel and user_id else None
        rows = [{"id": c.id, "title": c.title, "members": _members(c)} for c in channels]
    return render_template(
        "sandbox/telegram_bot_tester.html",
        users=users,
        user_id=user_id,
        channels=rows,
        channel=selected,
        emoji=REACTION_EMOJI,
        message=request.args.get("message", ""),
        error=request.args.get("error", ""),
    )


def _members(chat: Chat) -> int:
    return sum(1 for status in chat.statuses.values() if status in MEMBER_STATUSES)


def _channel_view(state, channel: Chat, user_id: int) -> dict[str, Any]:
    group = state.chats.get(channel.linked_chat_id or 0)
    posts = []
    for post_id in sorted(channel.messages, reverse=True)[:POSTS_SHOWN]:
        post = channel.messages[post_id]
        copy = group.messages.get(post.copy_id or 0) if group else None
        comments = [
            m
            for m in (group.messages.values() if group and copy else ())
            if m.thread_id == copy.id and not m.deleted
        ]
        posts.append(
            {
                "id": post.id,
                "date": datetime.fromtimestamp(post.date, UTC).strftime("%Y-%m-%d %H:%M"),
                "text": post.text,
                "channel_reactions": sum(len(e) for e in post.reactions.values()),
                "my_channel_reaction": (post.reactions.get(user_id) or [""])[0],
                "copy_id": copy.id if copy else None,
                "named_reactions": sum(len(e) for e in copy.reactions.values()) if copy else 0,
                "my_reaction": (copy.reactions.get(user_id) or [""])[0] if copy else "",
                "comments": len(comments),
                "own_comments": [
                    {"id": m.id, "text": m.text} for m in comments if m.from_id == user_id
                ],
            }
        )
    return {
        "id": channel.id,
        "title": channel.title,
        "discussion": group.title if group else None,
        "members": _members(channel),
        "status": channel.status(user_id),
        "is_member": channel.status(user_id) in MEMBER_STATUSES,
        "posts": posts,
    }


@bp.post("/tester/act")
def act() -> ResponseReturnValue:
    """Do the button's action as the chosen person, then go back to the page."""
    form = request.form
    user_id, chat_id = arg_int(form, "user_id"), arg_int(form, "chat_id")
    return act_and_return(
        lambda: telegram_state().act(
            form.get("action", ""),
            channel_id=chat_id,
            user_id=user_id,
            post_id=arg_int(form, "post_id"),
            text=form.get("text", ""),
            emoji=form.get("emoji", "👍"),
            where=form.get("where", "discussion"),
            message_id=arg_int(form, "message_id"),
        ),
        missing=None if None not in (user_id, chat_id) else "pick a person and a channel first",
        user_id=user_id,
        chat_id=chat_id,
    )
