"""The database models, one module per domain."""

from app.models.handoffs import Handoff
from app.models.identities import LinkedProfile
from app.models.ledger import EntryKind, LedgerEntry, LedgerIsAppendOnly
from app.models.members import Member
from app.models.notifications import ProviderNotification
from app.models.staff import StaffRole, StaffUser

__all__ = [
    "EntryKind",
    "Handoff",
    "LedgerEntry",
    "LedgerIsAppendOnly",
    "LinkedProfile",
    "Member",
    "ProviderNotification",
    "StaffRole",
    "StaffUser",
]
