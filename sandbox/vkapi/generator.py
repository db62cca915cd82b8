"""Reproducible big groups for benchmarks, and random changes to them.

``generate_group`` builds 100,000 members, 100 posts, 300,000 likes, 20,000 comments and
5,000 reposts in about a second: members are one sorted sample, each post's likers one
``random.sample`` of the members, and per-post totals come from skewed weights.
"""

from __future__ import annotations

import math
import random
import time
from typing import TYPE_CHECKING

from sandbox.vkapi.model import Comment, Group, Post, UserFlags

if TYPE_CHECKING:
    from sandbox.vkapi.model import VkApiState

# Generated users' ids start here (far from the sandbox persons' 1001001...).
GENERATED_BASE = 300_000_000
POSTS_SPAN = 30 * 86400
POST_TEXTS = (
    "Weekly digest: what happened in the club",
    "New rewards are live, check the portal",
    "Photo contest: share your best shot",
    "Which event should we run next month?",
    "Thank you for 1,000 likes!",
    "Behind the scenes of our last meetup",
)
COMMENT_TEXTS = ("Great!", "Thanks!", "Count me in", "Where is it?", "+1", "Nice photo", "When?")


def generate_group(
    vk: VkApiState,
    group_id: int,
    *,
    members: int,
    posts: int,
    likes: int,
    comments: int,
    reposts: int,
    seed: int = 0,
    name: str | None = None,
    now: int | None = None,
    private: float = 0.0,
    deactivated: float = 0.0,
) -> None:
    """Replace the group with a random one of exactly these totals (``random.Random(seed)``).

    Likes, comments and reposts are by members, spread over the posts with skewed weights;
    posts fall in the 30 days before ``now``, comments and reposts after their post.
    ``private`` and ``deactivated`` mark those fractions of the members.
    """
    totals = {"members": members, "posts": posts, "likes": likes}
    totals.update(comments=comments, reposts=reposts)
    for label, value in totals.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{label} must be a non-negative integer")
    if (likes or comments or reposts) and (posts == 0 or members == 0):
        raise ValueError("likes, comments and reposts need posts and members")
    if max(likes, reposts) > posts * members:
        raise ValueError("each member can like and repost a post only once")
    for label, fraction in (("private", private), ("deactivated", deactivated)):
        if not 0 <= fraction <= 1:
            raise ValueError(f"{label} must be a fraction between 0 and 1")
    rng = random.Random(seed)
    now = int(time.time()) if now is None else int(now)
    with vk.lock:
        old = vk.groups.get(group_id)
        if old is not None:
            _drop_reposts(vk, old)
        title = name or (old.name if old else f"Sandbox group {group_id}")
        vk.create_group(group_id, title, screen_name=old.screen_name if old else None)
        group = vk.groups[group_id]
        fresh = Group(group.id, group.name, group.screen_name)
        vk.groups[group_id] = fresh
        _build(vk, fresh, rng, now, members, posts, likes, comments, reposts)
        _mark_users(vk, fresh.members, rng, private, deactivated)
        shown = vk.generated_users
        for user_id in fresh.members:
            if len(shown) >= 20:
                break
            if user_id not in shown:
                shown.append(user_id)


def _build(
    vk: VkApiState,
    group: Group,
    rng: random.Random,
    now: int,
    members: int,
    posts: int,
    likes: int,
    comments: int,
    reposts: int,
) -> None:
    population = range(GENERATED_BASE, GENERATED_BASE + 3 * members + 1000)
    group.members = sorted(rng.sample(population, members))
    group.member_set = set(group.members)
    member_ids = group.members
    start = now - POSTS_SPAN
    wall: list[Post] = []
    for date in sorted(rng.randint(start, now - 3600) for _ in range(posts)):
        post = Post(group.next_id(), date, rng.choice(POST_TEXTS))
        group.posts[post.id] = post
        group.post_ids.append(post.id)
        wall.append(post)
    for post, count in zip(wall, _allocate(rng, likes, posts, members), strict=True):
        post.likers = rng.sample(member_ids, count)
        post.liker_set = set(post.likers)
    for post, count in zip(wall, _allocate(rng, comments, posts, None), strict=True):
        dates = sorted(rng.randint(post.date, now) for _ in range(count))
        authors = rng.choices(member_ids, k=count)
        post.comments = [
            Comment(group.next_id(), author, date, rng.choice(COMMENT_TEXTS))
            for author, date in zip(authors, dates, strict=True)
        ]
        post.comment_index = {comment.id: i for i, comment in enumerate(post.comments)}
        post.live_comments = count
    for post, count in zip(wall, _allocate(rng, reposts, posts, members), strict=True):
        dates = sorted(rng.randint(post.date, now) for _ in range(count))
        for user_id, date in zip(rng.sample(member_ids, count), dates, strict=True):
            vk._add_repost(group.id, post, user_id, date)


def _allocate(rng: random.Random, total: int, slots: int, cap: int | None) -> list[int]:
    """Split ``total`` over ``slots`` with log-normal weights, none above ``cap``."""
    if slots == 0:
        return []
    weights = [rng.lognormvariate(0.0, 1.0) for _ in range(slots)]
    scale = total / sum(weights)
    limit = total if cap is None else cap
    counts = [min(limit, int(weight * scale)) for weight in weights]
    remainder = total - sum(counts)
    while remainder > 0:
        room = [i for i in range(slots) if counts[i] < limit]
        step = max(1, math.ceil(remainder / len(room)))
        for i in room:
            add = min(step, limit - counts[i], remainder)
            counts[i] += add
            remainder -= add
            if remainder == 0:
                break
    return counts


def _mark_users(
    vk: VkApiState, members: list[int], rng: random.Random, private: float, deactivated: float
) -> None:
    for user_id in rng.sample(members, round(len(members) * private)):
        vk.flags.setdefault(user_id, UserFlags()).is_closed = True
    for user_id in rng.sample(members, round(len(members) * deactivated)):
        state = rng.choice(("deleted", "banned"))
        vk.flags.setdefault(user_id, UserFlags()).deactivated = state


def _drop_reposts(vk: VkApiState, group: Group) -> None:
    for post in group.posts.values():
        for repost in list(post.reposts):
            vk._remove_repost(post, repost)


def mutate(vk: VkApiState, group_id: int, fraction: float, *, seed: int = 0) -> dict[str, int]:
    """Change about ``fraction`` of the group's likes, comments, reposts and members.

    Half of each share is taken away (unlikes, deleted comments and reposts, leaves), half
    added (likes, comments and reposts by members, joins of new users), dated now.
    """
    if not isinstance(fraction, int | float) or not 0 <= fraction <= 1:
        raise ValueError("fraction must be between 0 and 1")
    rng = random.Random(seed)
    now = int(time.time())
    with vk.lock:
        group = vk.group(group_id)
        wall = [group.posts[post_id] for post_id in group.post_ids]
        share = fraction / 2
        changes = {
            "likes_removed": _unlike(rng, wall, share),
            "comments_deleted": _delete_comments(rng, wall, share),
            "reposts_deleted": _delete_reposts(vk, rng, wall, share),
            "members_left": _leave(rng, group, share),
        }
        changes["members_joined"] = _join(group, changes["members_left"])
        changes["likes_added"] = _like(rng, group, wall, changes["likes_removed"])
        changes["comments_added"] = _comment(rng, group, wall, changes["comments_deleted"], now)
        changes["reposts_added"] = _repost(vk, rng, group, wall, changes["reposts_deleted"], now)
    return changes


def _pick_weighted(rng: random.Random, wall: list[Post], sizes: list[int], k: int) -> list[Post]:
    if k <= 0 or not sum(sizes):
        return []
    return rng.choices(wall, weights=sizes, k=k)


def _unlike(rng: random.Random, wall: list[Post], share: float) -> int:
    sizes = [len(post.likers) for post in wall]
    done = 0
    for post in _pick_weighted(rng, wall, sizes, round(sum(sizes) * share)):
        if post.likers:
            user_id = post.likers.pop(rng.randrange(len(post.likers)))
            post.liker_set.discard(user_id)
            done += 1
    return done


def _delete_comments(rng: random.Random, wall: list[Post], share: float) -> int:
    sizes = [post.live_comments for post in wall]
    done = 0
    for post in _pick_weighted(rng, wall, sizes, round(sum(sizes) * share)):
        for _ in range(20):
            if not post.live_comments:
                break
            comment = post.comments[rng.randrange(len(post.comments))]
            if not comment.deleted:
                comment.deleted = True
                post.live_comments -= 1
                done += 1
                break
    return done


def _delete_reposts(vk: VkApiState, rng: random.Random, wall: list[Post], share: float) -> int:
    sizes = [len(post.reposts) for post in wall]
    done = 0
    for post in _pick_weighted(rng, wall, sizes, round(sum(sizes) * share)):
        if post.reposts:
            vk._remove_repost(post, post.reposts[rng.randrange(len(post.reposts))])
            done += 1
    return done


def _leave(rng: random.Random, group: Group, share: float) -> int:
    count = round(len(group.members) * share)
    for _ in range(count):
        user_id = group.members.pop(rng.randrange(len(group.members)))
        group.member_set.discard(user_id)
    return count


def _join(group: Group, count: int) -> int:
    next_id = max(group.members[-1] + 1 if group.members else 0, GENERATED_BASE)
    for user_id in range(next_id, next_id + count):
        group.members.append(user_id)
        group.member_set.add(user_id)
    return count


def _random_member(rng: random.Random, group: Group, taken: set[int] | dict[int, object]) -> int:
    for _ in range(20):
        user_id = group.members[rng.randrange(len(group.members))]
        if user_id not in taken:
            return user_id
    return 0


def _like(rng: random.Random, group: Group, wall: list[Post], count: int) -> int:
    if not wall or not group.members:
        return 0
    done = 0
    for post in rng.choices(wall, k=count):
        user_id = _random_member(rng, group, post.liker_set)
        if user_id:
            post.liker_set.add(user_id)
            post.likers.append(user_id)
            done += 1
    return done


def _comment(rng: random.Random, group: Group, wall: list[Post], count: int, now: int) -> int:
    open_posts = [post for post in wall if not post.comments_closed]
    if not open_posts or not group.members:
        return 0
    for post in rng.choices(open_posts, k=count):
        author = group.members[rng.randrange(len(group.members))]
        comment = Comment(group.next_id(), author, now, rng.choice(COMMENT_TEXTS))
        post.comment_index[comment.id] = len(post.comments)
        post.comments.append(comment)
        post.live_comments += 1
    return count


def _repost(
    vk: VkApiState, rng: random.Random, group: Group, wall: list[Post], count: int, now: int
) -> int:
    if not wall or not group.members:
        return 0
    done = 0
    for post in rng.choices(wall, k=count):
        user_id = _random_member(rng, group, post.repost_by_user)
        if user_id:
            vk._add_repost(group.id, post, user_id, now)
            done += 1
    return done
