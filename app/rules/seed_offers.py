"""The six example offers of the seed system, as offer data (shipped with the demo)."""

from __future__ import annotations

SEED_OFFERS: list[dict] = [
    {
        "id": "link-bonus",
        "title": "Points for linking a social profile",
        "state": "active",
        "event": "profile_linked",
        "chains": [
            {
                "actions": [
                    {
                        "type": "accrue",
                        "id": "bonus",
                        "amount": 50,
                        "description": "Linked a social profile",
                    },
                    {
                        "type": "message",
                        "id": "thanks",
                        "channel": "email",
                        "subject": "Thanks for linking your profile",
                        "template": "You earned 50 points for linking your {network} profile.",
                    },
                ]
            }
        ],
    },
    {
        "id": "join-group",
        "title": "Points for joining our group",
        "state": "active",
        "event": "joined_group",
        "chains": [
            {
                "actions": [
                    {
                        "type": "accrue",
                        "id": "bonus",
                        "amount": 20,
                        "description": "Joined our group",
                    }
                ]
            }
        ],
    },
    {
        "id": "reposts-comments",
        "title": "Points for reposts and comments",
        "state": "active",
        "event": "activity",
        "chains": [
            {
                "filters": [{"type": "activity", "kinds": ["repost"]}],
                "actions": [
                    {
                        "type": "accrue",
                        "id": "repost",
                        "amount": 10,
                        "description": "Reposted our post",
                    }
                ],
            },
            {
                "filters": [{"type": "activity", "kinds": ["comment"]}],
                "actions": [
                    {
                        "type": "accrue",
                        "id": "comment",
                        "amount": 3,
                        "description": "Commented on our post",
                    }
                ],
            },
        ],
    },
    {
        "id": "likes-monthly",
        "title": "5 points for the first like, 1 for each next, at most 15 a month",
        "state": "active",
        "event": "activity",
        "counters": [{"name": "like-points", "period": "month"}],
        "chains": [
            {
                "filters": [
                    {"type": "activity", "kinds": ["like"]},
                    {"type": "counter", "counter": "like-points", "op": "eq", "value": 0},
                ],
                "actions": [
                    {
                        "type": "accrue",
                        "id": "first-like",
                        "amount": 5,
                        "description": "First like this month",
                        "cap": {"counter": "like-points", "limit": 15},
                    }
                ],
            },
            {
                "filters": [{"type": "activity", "kinds": ["like"]}],
                "actions": [
                    {
                        "type": "accrue",
                        "id": "next-like",
                        "amount": 1,
                        "description": "Liked our post",
                        "cap": {"counter": "like-points", "limit": 15},
                    }
                ],
            },
        ],
    },
    {
        "id": "leave-group",
        "title": "Joining points taken back on leaving the group",
        "state": "active",
        "event": "left_group",
        "chains": [
            {
                "actions": [
                    {
                        "type": "deduct",
                        "id": "take-back",
                        "reverse": True,
                        "from_offer": "join-group",
                        "description": "Left our group",
                    }
                ]
            }
        ],
    },
    {
        "id": "repost-deleted",
        "title": "Repost points taken back when the repost is deleted",
        "state": "active",
        "event": "activity_deleted",
        "chains": [
            {
                "filters": [{"type": "activity", "kinds": ["repost"]}],
                "actions": [
                    {
                        "type": "deduct",
                        "id": "take-back",
                        "reverse": True,
                        "from_offer": "reposts-comments",
                        "description": "Deleted a repost",
                    }
                ],
            }
        ],
    },
]
