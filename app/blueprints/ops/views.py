"""The operator's view of collection: runs with live progress, the last success per group."""

from __future__ import annotations

from flask import render_template, request
from sqlalchemy import select

from app.blueprints.ops import bp
from app.extensions import db
from app.models import CollectionRun, TrackedGroup
from app.security import staff_required
from app.services.groups import groups_with_last_success

RUNS_SHOWN = 50


@bp.get("/runs")
@staff_required
def runs():
    rows = db.session.execute(
        select(CollectionRun, TrackedGroup)
        .join(TrackedGroup, TrackedGroup.id == CollectionRun.tracked_group_id)
        .order_by(CollectionRun.id.desc())
        .limit(RUNS_SHOWN)
    ).all()
    context = {"runs": rows, "groups": groups_with_last_success()}
    if request.headers.get("HX-Request") == "true":
        return render_template("_partials/runs_table.html", **context)
    return render_template("ops/runs.html", **context)
