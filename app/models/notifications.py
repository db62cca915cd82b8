"""Provider notifications received (Apple's server-to-server events), kept to ignore duplicates."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class ProviderNotification(db.Model):
    __tablename__ = "provider_notifications"
    __table_args__ = (UniqueConstraint("network", "dedup_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    network: Mapped[str] = mapped_column(String(32))
    dedup_key: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    outcome: Mapped[str] = mapped_column(String(255), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
