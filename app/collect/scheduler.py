"""The scheduler: every few seconds the lease holder collects the groups that are due.

Every app process may start it (gunicorn -w 4 starts four); only the process holding the
"scheduler" lease in the database runs jobs, and when it dies its lease expires and another
takes over. `flask scheduler` runs the same loop as a process of its own.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from sqlalchemy import func, or_, select

from app.collect.engine import HOLDER, collect_group
from app.collect.leases import acquire
from app.collect.vk_callbacks import forget_old_callbacks
from app.extensions import db
from app.models import CollectionRun, TrackedGroup
from app.models.types import utcnow
from app.services.ledger import expire_points

log = logging.getLogger(__name__)

LEASE = "scheduler"


def due_groups() -> list[int]:
    """Groups whose last run started at least their interval ago (or never ran); not a
    Telegram channel whose updates come by webhook (Telegram refuses getUpdates then)."""
    last = (
        select(CollectionRun.tracked_group_id, func.max(CollectionRun.started_at).label("at"))
        .group_by(CollectionRun.tracked_group_id)
        .subquery()
    )
    now = utcnow()
    rows = db.session.execute(
        select(TrackedGroup.id, TrackedGroup.interval_seconds, last.c.at)
        .outerjoin(last, last.c.tracked_group_id == TrackedGroup.id)
        .where(
            or_(
                TrackedGroup.network != "telegram",
                TrackedGroup.callback_secret_encrypted.is_(None),
            )
        )
    )
    return [
        group_id
        for group_id, interval, at in rows
        if at is None or at + timedelta(seconds=interval) <= now
    ]


EXPIRY_EVERY_SECONDS = 3600
_last_expiry = [float("-inf")]


def tick(app: Flask) -> bool:
    """One scheduler step; True when this process is the leader and did the work."""
    lease_seconds = app.config["SCHEDULER_LEASE_SECONDS"]
    with app.app_context():
        try:
            if not acquire(LEASE, HOLDER, lease_seconds):
                return False
            for group_id in due_groups():
                try:
                    collect_group(group_id)
                except Exception:
                    log.exception("collection of group %s failed", group_id)
                    db.session.rollback()
                # Renewed between groups: a long cycle must not let a second leader start.
                if not acquire(LEASE, HOLDER, lease_seconds):
                    return False
            if time.monotonic() - _last_expiry[0] >= EXPIRY_EVERY_SECONDS:
                expire_points(utcnow())
                forget_old_callbacks(utcnow())
                _last_expiry[0] = time.monotonic()
            return True
        finally:
            db.session.remove()


def start_scheduler(app: Flask) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(daemon=True)
    scheduler.add_job(
        tick,
        "interval",
        args=[app],
        seconds=app.config["SCHEDULER_TICK_SECONDS"],
        max_instances=1,
        coalesce=True,
        id="collect-due-groups",
    )
    scheduler.start()
    app.extensions["loyalink.scheduler"] = scheduler
    return scheduler
