"""The shared rules module: offers as typed data, evaluate(event, ...) -> effects.

Pure: nothing of Flask and no database session. Services load the state and write the effects.
"""

from app.rules.engine import (
    Award,
    Evaluation,
    Event,
    LedgerEffect,
    LedgerState,
    MemberFacts,
    MessageEffect,
    Policy,
    applicable_offers,
    counter_keys,
    evaluate,
)
from app.rules.model import ActivityKind, EventKind, Offer, OfferInvalid, OfferState, parse_offer

__all__ = [
    "ActivityKind",
    "Award",
    "Evaluation",
    "Event",
    "EventKind",
    "LedgerEffect",
    "LedgerState",
    "MemberFacts",
    "MessageEffect",
    "Offer",
    "OfferInvalid",
    "OfferState",
    "Policy",
    "applicable_offers",
    "counter_keys",
    "evaluate",
    "parse_offer",
]
