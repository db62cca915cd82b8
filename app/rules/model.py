"""Offers as typed, validated data: an event kind, ordered chains of filters and actions.

An offer is stored as JSON (one row per version) and validated here; an invalid offer is refused
with a message naming the field. Chains are tried in order and the first whose filters all pass
runs its actions (if / elif), which is how "5 points for the first like, then 1" is written.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SLUG = r"^[a-z0-9][a-z0-9-]{0,63}$"


class EventKind(enum.StrEnum):
    PROFILE_LINKED = "profile_linked"
    PROFILE_UNLINKED = "profile_unlinked"
    JOINED_GROUP = "joined_group"
    LEFT_GROUP = "left_group"
    ACTIVITY = "activity"
    ACTIVITY_DELETED = "activity_deleted"


GROUP_EVENTS = {
    EventKind.JOINED_GROUP,
    EventKind.LEFT_GROUP,
    EventKind.ACTIVITY,
    EventKind.ACTIVITY_DELETED,
}
ACTIVITY_EVENTS = {EventKind.ACTIVITY, EventKind.ACTIVITY_DELETED}


class ActivityKind(enum.StrEnum):
    LIKE = "like"
    COMMENT = "comment"
    REPOST = "repost"


class OfferState(enum.StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


class Period(enum.StrEnum):
    LIFETIME = "lifetime"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


class CounterDimension(enum.StrEnum):
    NETWORK = "network"
    GROUP = "group"
    OBJECT = "object"
    ACTIVITY = "activity"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CounterSpec(Strict):
    """A named counter, always per member and per offer, plus the dimensions listed."""

    name: str = Field(pattern=SLUG)
    key: tuple[CounterDimension, ...] = ()
    period: Period = Period.LIFETIME


class NetworkFilter(Strict):
    type: Literal["network"] = "network"
    networks: tuple[str, ...] = Field(min_length=1)


class GroupFilter(Strict):
    type: Literal["group"] = "group"
    groups: tuple[str, ...] = Field(min_length=1)


class ActivityFilter(Strict):
    type: Literal["activity"] = "activity"
    kinds: tuple[ActivityKind, ...] = Field(min_length=1)


class ObjectsFilter(Strict):
    """Tracked objects: chosen posts. (All posts of a group is a GroupFilter.)"""

    type: Literal["objects"] = "objects"
    objects: tuple[str, ...] = Field(min_length=1)


class CounterFilter(Strict):
    type: Literal["counter"] = "counter"
    counter: str
    op: Literal["eq", "ne", "lt", "le", "gt", "ge", "between", "every_nth"]
    value: int
    upper: int | None = None

    @model_validator(mode="after")
    def _check_bounds(self) -> CounterFilter:
        if self.op == "between" and (self.upper is None or self.upper < self.value):
            raise ValueError("'between' needs an upper bound not below value")
        if self.op == "every_nth" and self.value < 1:
            raise ValueError("'every_nth' needs a value of at least 1")
        return self


class ScheduleFilter(Strict):
    """Weekdays (0 = Monday) and hours [start_hour, end_hour) in the programme's time zone."""

    type: Literal["schedule"] = "schedule"
    weekdays: tuple[Annotated[int, Field(ge=0, le=6)], ...] = (0, 1, 2, 3, 4, 5, 6)
    start_hour: int = Field(default=0, ge=0, le=23)
    end_hour: int = Field(default=24, ge=1, le=24)

    @model_validator(mode="after")
    def _check_hours(self) -> ScheduleFilter:
        if self.end_hour <= self.start_hour:
            raise ValueError("end_hour must be after start_hour")
        return self


class MemberFilter(Strict):
    type: Literal["member"] = "member"
    attribute: Literal["has_contact_email", "marketing_opt_in"]
    equals: bool = True


Filter = Annotated[
    NetworkFilter
    | GroupFilter
    | ActivityFilter
    | ObjectsFilter
    | CounterFilter
    | ScheduleFilter
    | MemberFilter,
    Field(discriminator="type"),
]


class Cap(Strict):
    """Pay at most `limit` points into this counter per its period; a last award is partial."""

    counter: str
    limit: int = Field(gt=0)


class AccrueAction(Strict):
    type: Literal["accrue"] = "accrue"
    id: str = Field(pattern=SLUG)
    amount: int = Field(gt=0, le=1_000_000)
    description: str = ""
    activation_delay_minutes: int = Field(default=0, ge=0)
    expires_after_days: int | None = Field(default=None, gt=0)
    cap: Cap | None = None


class DeductAction(Strict):
    """A fixed deduction, or `reverse`: take back exactly what this fact earned before."""

    type: Literal["deduct"] = "deduct"
    id: str = Field(pattern=SLUG)
    amount: int | None = Field(default=None, gt=0, le=1_000_000)
    reverse: bool = False
    from_offer: str | None = None
    description: str = ""

    @model_validator(mode="after")
    def _amount_or_reverse(self) -> DeductAction:
        if (self.amount is None) == (not self.reverse):
            raise ValueError("give either an amount or reverse: true, not both")
        if self.from_offer and not self.reverse:
            raise ValueError("from_offer only applies to reverse: true")
        return self


class MessageAction(Strict):
    type: Literal["message"] = "message"
    id: str = Field(pattern=SLUG)
    channel: Literal["sms", "email", "push", "viber"]
    template: str = Field(min_length=1, max_length=2000)
    subject: str = Field(default="", max_length=200)


class CounterAction(Strict):
    type: Literal["counter"] = "counter"
    id: str = Field(pattern=SLUG)
    counter: str
    operation: Literal["increase", "decrease", "set"] = "increase"
    value: int = 1


Action = Annotated[
    AccrueAction | DeductAction | MessageAction | CounterAction, Field(discriminator="type")
]


class Chain(Strict):
    filters: tuple[Filter, ...] = ()
    actions: tuple[Action, ...] = Field(min_length=1)


class Offer(Strict):
    id: str = Field(pattern=SLUG)
    version: int = Field(default=1, ge=1)
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    state: OfferState = OfferState.DRAFT
    priority: int = 0
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    event: EventKind
    counters: tuple[CounterSpec, ...] = ()
    chains: tuple[Chain, ...] = Field(min_length=1)
    # When false (the default), taking back an award leaves its cap room used: no farming.
    reversal_frees_cap: bool = False

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-12-01T00:00:00+03:00")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Offer:
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        names = [spec.name for spec in self.counters]
        if len(names) != len(set(names)):
            raise ValueError("counter names must be unique within the offer")
        action_ids: list[str] = []
        for index, chain in enumerate(self.chains):
            where = f"chains.{index}"
            for flt in chain.filters:
                self._check_filter(flt, names, where)
            for action in chain.actions:
                action_ids.append(action.id)
                counter = getattr(action, "counter", None) or (
                    action.cap.counter if getattr(action, "cap", None) else None
                )
                if counter is not None and counter not in names:
                    raise ValueError(
                        f"{where}: action {action.id!r} uses undeclared counter {counter!r}"
                    )
        if len(action_ids) != len(set(action_ids)):
            raise ValueError("action ids must be unique within the offer")
        return self

    def _check_filter(self, flt: object, counter_names: list[str], where: str) -> None:
        kind = getattr(flt, "type", "")
        if kind in {"activity", "objects"} and self.event not in ACTIVITY_EVENTS:
            raise ValueError(f"{where}: the {kind} filter needs an activity event")
        if kind == "group" and self.event not in GROUP_EVENTS:
            raise ValueError(f"{where}: a group filter needs a group event")
        if isinstance(flt, CounterFilter) and flt.counter not in counter_names:
            raise ValueError(f"{where}: filter uses undeclared counter {flt.counter!r}")

    def counter_spec(self, name: str) -> CounterSpec:
        return next(spec for spec in self.counters if spec.name == name)


class OfferInvalid(ValueError):
    """The offer data is refused; the message names each faulty field."""


def parse_offer(data: dict) -> Offer:
    try:
        return Offer.model_validate(data)
    except ValidationError as exc:
        raise OfferInvalid(describe_errors(exc)) from None


def describe_errors(exc: ValidationError) -> str:
    parts = []
    errors = exc.errors()
    for error in errors:
        if error["type"] == "too_short" and any(
            other["loc"][: len(error["loc"])] == error["loc"]
            and len(other["loc"]) > len(error["loc"])
            for other in errors
        ):
            continue  # a list emptied by its own invalid items: the items' errors say why
        location = ".".join(str(part) for part in error["loc"])
        message = re.sub(r"^Value error, ", "", error["msg"])
        parts.append(f"{location or 'offer'}: {message}")
    return "; ".join(parts)
