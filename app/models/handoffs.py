"""Short-lived, single-use server-side records that carry a sign-in from one request to the next.

They hold what must not travel in the (signed, not encrypted) session cookie: a provider's
form_post callback between its cross-site POST and our same-site GET, and a pending
registration with its refresh token until the newcomer consents. The payload is encrypted.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class Handoff(db.Model):
    __tablename__ = "handoffs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(40))
    payload_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
