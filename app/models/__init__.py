"""The database models, one module per domain."""

from app.models.collection import (
    ActivityMark,
    ActivitySnapshot,
    CollectionRun,
    DiscussionThread,
    Lease,
    MemberSnapshot,
    PostSnapshot,
    TrackedGroup,
)
from app.models.events import Counter, Event, OutboxMessage
from app.models.handoffs import Handoff
from app.models.identities import LinkedProfile
from app.models.ledger import EntryKind, LedgerEntry, LedgerIsAppendOnly
from app.models.members import Member
from app.models.notifications import ProviderNotification
from app.models.offers import OfferVersion
from app.models.staff import StaffRole, StaffUser

__all__ = [
    "ActivityMark",
    "ActivitySnapshot",
    "CollectionRun",
    "Counter",
    "DiscussionThread",
    "EntryKind",
    "Event",
    "Handoff",
    "Lease",
    "LedgerEntry",
    "LedgerIsAppendOnly",
    "LinkedProfile",
    "Member",
    "MemberSnapshot",
    "OfferVersion",
    "OutboxMessage",
    "PostSnapshot",
    "ProviderNotification",
    "StaffRole",
    "StaffUser",
    "TrackedGroup",
]
