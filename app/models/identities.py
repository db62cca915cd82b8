"""Profiles on Apple ID and social networks linked to a member: (network, subject) is the person."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.models.members import Member


class LinkedProfile(db.Model):
    __tablename__ = "linked_profiles"
    __table_args__ = (UniqueConstraint("network", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    network: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    # Shown to the member only; never used to match anyone (private relays least of all).
    email: Mapped[str | None] = mapped_column(String(320))
    email_verified: Mapped[bool] = mapped_column(default=False)
    is_private_email: Mapped[bool] = mapped_column(default=False)
    email_forwarding_enabled: Mapped[bool] = mapped_column(default=True)
    # The token that revokes our access at unlink (encrypted; never logged or rendered).
    token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when the person withdrew our app's access at the provider; a new sign-in clears it.
    consent_revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    member: Mapped[Member] = relationship(back_populates="profiles")
