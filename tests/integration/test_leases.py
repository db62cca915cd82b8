"""Leases: one scheduler leader among many processes, replaced when it dies."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta

import pytest

from app.collect.leases import acquire, release
from app.extensions import db as app_db
from app.models import Lease
from app.models.types import utcnow

pytestmark = pytest.mark.database


def test_one_holder_at_a_time_and_renewal(app):
    with app.app_context():
        assert acquire("scheduler", "worker-1", 30)
        assert not acquire("scheduler", "worker-2", 30)
        assert acquire("scheduler", "worker-1", 30), "the holder renews"
        release("scheduler", "worker-1")
        assert acquire("scheduler", "worker-2", 30)


def test_a_dead_holder_is_replaced_after_the_lease_expires(app):
    with app.app_context():
        assert acquire("scheduler", "dead-worker", 30)
        lease = app_db.session.get(Lease, "scheduler")
        lease.expires_at = utcnow() - timedelta(seconds=1)
        app_db.session.commit()
        assert acquire("scheduler", "worker-2", 30)
        assert not acquire("scheduler", "dead-worker", 30)


def _contend(settings, holder, start, results):
    from app import create_app

    app = create_app("testing", **settings)
    with app.app_context():
        start.wait(10)
        results.put((holder, acquire("scheduler", holder, 30)))


def test_four_processes_one_leader(settings, app):
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    workers = [
        context.Process(target=_contend, args=(settings, f"worker-{n}", start, results))
        for n in range(4)
    ]
    for worker in workers:
        worker.start()
    start.set()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(30)
    assert sum(won for _, won in outcomes) == 1, outcomes
