"""Programme members and the consent they gave at registration."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.models.identities import LinkedProfile


class Member(db.Model):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    # A contact address the member chose; never used to find or link an account.
    contact_email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    terms_version: Mapped[str] = mapped_column(String(40))
    terms_accepted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    data_processing_accepted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    marketing_opt_in: Mapped[bool] = mapped_column(default=False)
    # A deleted member keeps its row (the ledger refers to it) with every personal field erased.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Part of the session's user id: raising it at sign-out ends every copy of the cookie.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")

    profiles: Mapped[list[LinkedProfile]] = relationship(
        back_populates="member", cascade="all, delete-orphan", order_by="LinkedProfile.linked_at"
    )

    @property
    def display_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part) or "Member"

    @property
    def is_active(self) -> bool:
        return self.deleted_at is None

    def get_id(self) -> str:
        return f"member:{self.id}:{self.session_version}"

    is_authenticated = True
    is_anonymous = False
    is_staff = False
