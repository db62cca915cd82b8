"""Saving offers: validated, and every change a new version."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import OfferVersion, StaffUser
from app.rules import Offer, parse_offer
from app.rules.seed_offers import SEED_OFFERS


def save_offer(data: dict[str, Any], staff: StaffUser | None = None) -> Offer:
    """Validate and store the offer as its next version; raises OfferInvalid naming the field."""
    probe = parse_offer({**data, "version": 1})
    current = db.session.scalar(
        select(func.max(OfferVersion.version)).where(OfferVersion.offer_id == probe.id)
    )
    offer = probe.model_copy(update={"version": (current or 0) + 1})
    stored = offer.model_dump(mode="json", exclude={"id", "version"})
    db.session.add(
        OfferVersion(
            offer_id=offer.id,
            version=offer.version,
            data=stored,
            created_by_staff_id=staff.id if staff else None,
        )
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise
    return offer


def install_seed_offers() -> list[Offer]:
    """The seed system's six example offers, each stored once (for the demo and tests)."""
    existing = set(db.session.scalars(select(OfferVersion.offer_id).distinct()))
    return [save_offer(data) for data in SEED_OFFERS if data["id"] not in existing]
