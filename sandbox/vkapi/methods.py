"""The VK API data methods the sandbox answers, with VK 5.199's response shapes.

Each handler takes the state and the request's parameters (strings) and returns the value of
``"response"``; callers hold ``vk.lock``. Errors are ``VkError``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sandbox.vkapi.model import Comment, Group, Post, Repost, UserView, VkApiState, error_message

Params = Mapping[str, str]
Handler = Callable[[VkApiState, Params], Any]

NO_PHOTO = "https://vk.com/images/camera_100.png"
INVALID = "One of the parameters specified was missing or invalid"
WALL_FILTERS = frozenset({"all", "owner", "others", "postponed", "suggests", "donut"})


class VkError(Exception):
    """A VK API error: ``{"error_code", "error_msg"}``."""

    def __init__(self, code: int, message: str | None = None) -> None:
        self.code = code
        self.message = message or error_message(code)
        super().__init__(self.message)


def invalid(detail: str) -> VkError:
    """Error 100 with VK's message and a detail."""
    return VkError(100, f"{INVALID}: {detail}")


# Parameters


def int_param(
    params: Params,
    name: str,
    default: int | None = None,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """An integer parameter; error 100 if missing (without default), malformed or out of range."""
    raw = params.get(name, "").strip()
    if not raw:
        if default is None:
            raise invalid(f"{name} is undefined")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(f"{name} not integer") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise invalid(name)
    return value


def flag_param(params: Params, name: str) -> bool:
    """A 0/1 flag parameter."""
    return params.get(name, "").strip().lower() in ("1", "true")


def id_list(params: Params, name: str, limit: int) -> list[int]:
    """A comma list of integers, at most ``limit`` of them."""
    raw = [part.strip() for part in params.get(name, "").split(",") if part.strip()]
    if len(raw) > limit:
        raise invalid(name)
    try:
        return [int(part) for part in raw]
    except ValueError:
        raise invalid(f"{name} should be a comma-separated list of integers") from None


def is_number(text: str) -> bool:
    """True for a non-empty string of ASCII digits."""
    return text.isascii() and text.isdigit()


def paging(params: Params, default: int, maximum: int) -> tuple[int, int]:
    """``offset`` (>= 0) and ``count`` (0..maximum)."""
    offset = int_param(params, "offset", 0, minimum=0)
    count = int_param(params, "count", default, minimum=0, maximum=maximum)
    return offset, count


def newest_first(items: Sequence[Any], offset: int, count: int) -> list[Any]:
    """A page of an oldest-first list, read newest first; O(count)."""
    end = len(items) - offset
    if end <= 0 or count == 0:
        return []
    return list(reversed(items[max(0, end - count) : end]))


def group_param(vk: VkApiState, params: Params, name: str = "group_id") -> Group:
    """The group named by id, "club123"/"public123" or screen_name."""
    raw = params.get(name, "").strip()
    if not raw:
        raise invalid(f"{name} is undefined")
    group_id: int | None = None
    for prefix in ("club", "public", "event", ""):
        rest = raw[len(prefix) :]
        if raw.startswith(prefix) and is_number(rest):
            group_id = int(rest)
            break
    group = vk.groups.get(group_id) if group_id is not None else vk.group_by_name(raw)
    if group is None:
        raise invalid(f"{name} is invalid")
    return group


def owner_post(vk: VkApiState, params: Params, post_name: str) -> tuple[Group | None, Post | None]:
    """The group and post of a group-wall method; (None, None) for a user's wall."""
    owner_id = int_param(params, "owner_id")
    post_id = int_param(params, post_name, minimum=1)
    if owner_id > 0:
        _check_user_wall(vk, owner_id)
        return None, None
    group = vk.groups.get(-owner_id)
    if group is None:
        raise invalid("owner_id is invalid")
    post = group.posts.get(post_id)
    if post is None:
        raise invalid(f"{post_name} is invalid")
    return group, post


def _check_user_wall(vk: VkApiState, user_id: int) -> UserView:
    user = vk.users([user_id])[0]
    if user.deactivated:
        raise VkError(18)
    if user.is_closed:
        raise VkError(30)
    return user


# Shapes


def user_json(user: UserView, fields: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A user object of users.get (and of "profiles" lists)."""
    data: dict[str, Any] = {"id": user.id}
    if user.deactivated == "deleted":
        data.update(first_name="DELETED", last_name="")
    else:
        data.update(first_name=user.first_name, last_name=user.last_name)
    data.update(can_access_closed=not user.is_closed, is_closed=user.is_closed)
    if user.deactivated:
        data["deactivated"] = user.deactivated
    for name in fields & {"screen_name", "domain"}:
        data[name] = f"id{user.id}"
    for name in fields & {"photo_50", "photo_100", "photo_200"}:
        data[name] = NO_PHOTO
    return data


def group_json(group: Group) -> dict[str, Any]:
    """A group object of "groups" lists."""
    return {
        "id": group.id,
        "name": group.name,
        "screen_name": group.screen_name,
        "is_closed": 0,
        "type": "page",
        "photo_100": NO_PHOTO,
    }


def post_json(group: Group, post: Post) -> dict[str, Any]:
    """A post of a group's wall as wall.get shows it."""
    return {
        "id": post.id,
        "owner_id": -group.id,
        "from_id": -group.id,
        "date": post.date,
        "post_type": "post",
        "text": post.text,
        "marked_as_ads": 0,
        "attachments": [],
        "post_source": {"type": "api"},
        "comments": {
            "can_post": 0 if post.comments_closed else 1,
            "count": post.live_comments,
            "groups_can_post": True,
        },
        "likes": {"can_like": 1, "count": len(post.likers), "user_likes": 0, "can_publish": 1},
        "reposts": {"count": len(post.reposts), "user_reposted": 0},
    }


def repost_json(vk: VkApiState, repost: Repost) -> dict[str, Any]:
    """A repost: a post on the user's wall whose copy_history[0] is the original."""
    original: dict[str, Any] = {"id": repost.post_id, "owner_id": -repost.group_id}
    group = vk.groups.get(repost.group_id)
    post = group.posts.get(repost.post_id) if group else None
    if post is not None:
        original.update(from_id=-repost.group_id, date=post.date, post_type="post", text=post.text)
    return {
        "id": repost.id,
        "owner_id": repost.user_id,
        "from_id": repost.user_id,
        "date": repost.date,
        "post_type": "post",
        "text": "",
        "copy_history": [original],
        "comments": {"can_post": 1, "count": 0},
        "likes": {"can_like": 1, "count": 0, "user_likes": 0, "can_publish": 1},
        "reposts": {"count": 0, "user_reposted": 0},
    }


def _fields(params: Params) -> frozenset[str]:
    return frozenset(part.strip() for part in params.get("fields", "").split(",") if part)


def _profiles(vk: VkApiState, user_ids: Sequence[int]) -> list[dict[str, Any]]:
    return [user_json(user) for user in vk.users(dict.fromkeys(user_ids))]


# Methods


def groups_get_members(vk: VkApiState, params: Params) -> dict[str, Any]:
    """groups.getMembers: member ids sorted by id, up to 1000 a page."""
    group = group_param(vk, params)
    offset, count = paging(params, 1000, 1000)
    sort = params.get("sort", "") or "id_asc"
    members = group.members
    if sort == "id_asc":
        items: list[Any] = members[offset : offset + count]
    elif sort == "id_desc":
        items = newest_first(members, offset, count)
    else:
        raise invalid("sort should be id_asc or id_desc in the sandbox")
    fields = _fields(params)
    if fields:
        items = [user_json(user, fields) for user in vk.users(items)]
    return {"count": len(members), "items": items}


def groups_is_member(vk: VkApiState, params: Params) -> Any:
    """groups.isMember: 0/1 for user_id, a list of {"member", "user_id"} for user_ids."""
    group = group_param(vk, params)
    if params.get("user_ids", "").strip():
        return [
            {"member": int(user_id in group.member_set), "user_id": user_id}
            for user_id in id_list(params, "user_ids", 500)
        ]
    return int(int_param(params, "user_id") in group.member_set)


def wall_get(vk: VkApiState, params: Params) -> dict[str, Any]:
    """wall.get: a group's posts (or a user's reposts), newest first, up to 100 a page."""
    offset, count = paging(params, 20, 100)
    wall_filter = params.get("filter", "") or "all"
    if wall_filter not in WALL_FILTERS:
        raise invalid("filter")
    owner_id = _wall_owner(vk, params)
    answer: dict[str, Any]
    if owner_id > 0:
        user = _check_user_wall(vk, owner_id)
        reposts = vk.walls.get(owner_id, []) if wall_filter in ("all", "owner") else []
        page = newest_first(reposts, offset, count)
        answer = {"count": len(reposts), "items": [repost_json(vk, r) for r in page]}
        sources = dict.fromkeys(repost.group_id for repost in page)
        profiles = [user_json(user)]
        groups = [group_json(vk.groups[g]) for g in sources if g in vk.groups]
    else:
        group = vk.groups.get(-owner_id)
        if group is None:
            raise invalid("owner_id is invalid")
        ids = group.post_ids if wall_filter in ("all", "owner") else []
        page_ids = newest_first(ids, offset, count)
        items = [post_json(group, group.posts[post_id]) for post_id in page_ids]
        answer = {"count": len(ids), "items": items}
        profiles, groups = [], [group_json(group)]
    if flag_param(params, "extended"):
        answer.update(profiles=profiles, groups=groups)
    return answer


def _wall_owner(vk: VkApiState, params: Params) -> int:
    if params.get("owner_id", "").strip() or not params.get("domain", "").strip():
        owner_id = int_param(params, "owner_id")
        if owner_id == 0:
            raise invalid("owner_id is invalid")
        return owner_id
    domain = params["domain"].strip()
    if domain.startswith("id") and is_number(domain[2:]):
        return int(domain[2:])
    return -group_param(vk, params, "domain").id


def likes_get_list(vk: VkApiState, params: Params) -> dict[str, Any]:
    """likes.getList: who liked (filter=likes) or reposted (copies) a post, newest first."""
    if params.get("type", "").strip() != "post":
        raise invalid("type should be post in the sandbox")
    like_filter = params.get("filter", "") or "likes"
    if like_filter not in ("likes", "copies"):
        raise invalid("filter")
    offset, count = paging(params, 100, 1000)
    _, post = owner_post(vk, params, "item_id")
    if post is None:
        return {"count": 0, "items": []}
    if like_filter == "likes":
        total = len(post.likers)
        user_ids: list[int] = newest_first(post.likers, offset, count)
    else:
        total = len(post.reposts)
        user_ids = [repost.user_id for repost in newest_first(post.reposts, offset, count)]
    if not flag_param(params, "extended"):
        return {"count": total, "items": user_ids}
    profiles = [{"type": "profile", **user_json(user)} for user in vk.users(user_ids)]
    return {"count": total, "items": profiles}


def wall_get_comments(vk: VkApiState, params: Params) -> dict[str, Any]:
    """wall.getComments: a post's comments by id, deleted ones in place, up to 100 a page."""
    offset, count = paging(params, 10, 100)
    sort = params.get("sort", "") or "asc"
    if sort not in ("asc", "desc"):
        raise invalid("sort")
    int_param(params, "thread_items_count", 0, minimum=0, maximum=10)
    group, post = owner_post(vk, params, "post_id")
    if group is None or post is None:
        return {"count": 0, "current_level_count": 0, "can_post": 1, "items": []}
    if post.comments_closed:
        raise VkError(212)
    comments = post.comments
    start_id = params.get("start_comment_id", "").strip()
    if start_id:
        start = post.comment_index.get(int_param(params, "start_comment_id"))
        if start is None:
            raise invalid("start_comment_id is invalid")
        offset += start if sort == "asc" else len(comments) - 1 - start
    if sort == "asc":
        page = comments[offset : offset + count]
    else:
        page = newest_first(comments, offset, count)
    items = [_comment_json(group, post, comment) for comment in page]
    answer: dict[str, Any] = {
        "count": len(comments),
        "current_level_count": len(comments),
        "can_post": 1,
        "show_reply_button": True,
        "groups_can_post": True,
        "items": items,
    }
    if flag_param(params, "extended"):
        authors = [comment.from_id for comment in page if not comment.deleted]
        answer.update(profiles=_profiles(vk, authors), groups=[group_json(group)])
    return answer


def _comment_json(group: Group, post: Post, comment: Comment) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": comment.id,
        "post_id": post.id,
        "owner_id": -group.id,
        "parents_stack": [],
        "date": comment.date,
    }
    if comment.deleted:
        data["deleted"] = True
    else:
        data.update(from_id=comment.from_id, text=comment.text)
    data["thread"] = {"count": 0, "items": [], "can_post": True, "show_reply_button": True}
    return data


def wall_get_comment(vk: VkApiState, params: Params) -> dict[str, Any]:
    """wall.getComment: one comment by id (``"deleted": true`` once deleted), as a list."""
    owner_id = int_param(params, "owner_id")
    comment_id = int_param(params, "comment_id", minimum=1)
    if owner_id > 0:
        # The sandbox has no comments on users' walls.
        _check_user_wall(vk, owner_id)
        raise invalid("comment_id is invalid")
    group = vk.groups.get(-owner_id)
    if group is None:
        raise invalid("owner_id is invalid")
    found = _find_comment(group, comment_id)
    if found is None:
        raise invalid("comment_id is invalid")
    post, comment = found
    if post.comments_closed:
        raise VkError(212)
    answer: dict[str, Any] = {
        "items": [_comment_json(group, post, comment)],
        "current_level_count": 1,
        "can_post": 1,
        "show_reply_button": True,
        "groups_can_post": True,
    }
    if flag_param(params, "extended"):
        authors = [] if comment.deleted else [comment.from_id]
        answer.update(profiles=_profiles(vk, authors), groups=[group_json(group)])
    return answer


def _find_comment(group: Group, comment_id: int) -> tuple[Post, Comment] | None:
    # Posts and comments share the wall's counter, so only posts older than the comment can
    # hold it; newest first, as a checked comment is usually recent.
    end = bisect.bisect_left(group.post_ids, comment_id)
    for post_id in reversed(group.post_ids[:end]):
        post = group.posts[post_id]
        index = post.comment_index.get(comment_id)
        if index is not None:
            return post, post.comments[index]
    return None


def wall_get_reposts(vk: VkApiState, params: Params) -> dict[str, Any]:
    """wall.getReposts: the reposts of a group post, newest first, up to 1000 a page."""
    offset, count = paging(params, 20, 1000)
    group, post = owner_post(vk, params, "post_id")
    if group is None or post is None:
        return {"items": [], "profiles": [], "groups": []}
    page = newest_first(post.reposts, offset, count)
    return {
        "items": [repost_json(vk, repost) for repost in page],
        "profiles": _profiles(vk, [repost.user_id for repost in page]),
        "groups": [group_json(group)],
    }


def users_get(vk: VkApiState, params: Params) -> list[dict[str, Any]]:
    """users.get: profiles of up to 1000 users (error 18 for a lone deactivated one)."""
    raw = [part.strip() for part in params.get("user_ids", "").split(",") if part.strip()]
    if not raw:
        raise invalid("user_ids is undefined")
    if len(raw) > 1000:
        raise invalid("user_ids")
    ids = []
    for part in raw:
        digits = part[2:] if part.startswith("id") else part
        if is_number(digits) and int(digits) > 0:
            ids.append(int(digits))
    if not ids:
        raise VkError(113)
    users = vk.users(dict.fromkeys(ids))
    if len(users) == 1 and users[0].deactivated:
        raise VkError(18)
    fields = _fields(params)
    return [user_json(user, fields) for user in users]


METHODS: dict[str, Handler] = {
    "groups.getMembers": groups_get_members,
    "groups.isMember": groups_is_member,
    "wall.get": wall_get,
    "likes.getList": likes_get_list,
    "wall.getComments": wall_get_comments,
    "wall.getComment": wall_get_comment,
    "wall.getReposts": wall_get_reposts,
    "users.get": users_get,
}
# VK refuses community tokens on these methods.
USER_OR_SERVICE_ONLY = frozenset(
    {"wall.get", "likes.getList", "wall.getComments", "wall.getComment", "wall.getReposts"}
)
