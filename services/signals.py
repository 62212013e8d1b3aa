"""Warnings about deals, shared by the pane's context and the manager reports.

Definitions are PRODUCT.md's:

* **going dark**: an open deal with no inbound interaction (inbound email, connected call,
  held meeting or visit) for N days (organization setting, default 21);
* **stale**: an open deal whose time in its current stage exceeds that stage's SLA days;
* **neglected**: an open deal with no activity for N days (default 14) and no follow-up due
  in the future.

A deal with no interaction yet counts from its creation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Protocol

from sqlalchemy import ColumnElement, and_, bindparam, or_, select
from sqlalchemy.orm import Session

from services.models import Activity, FollowUp, Opportunity, Organization
from services.types import as_utc


# PRODUCT.md's "contact" (an inbound interaction): per activity type, the field and value that
# make it one. is_inbound_interaction (SQL) and is_contact (Python) both read this table.
CONTACT_RULES = {"email": ("direction", "inbound"), "call": ("outcome", "connected"), "meeting": ("outcome", "held"),
                 "visit": ("outcome", "held")}
# An attempt: an outbound call or outbound email.
ATTEMPT_TYPES = ("call", "email")


def is_inbound_interaction(model: Any = Activity) -> ColumnElement[bool]:
    """A connected call, a held meeting or visit, an inbound email (of the activities, or of a
    rollup's keys)."""
    return or_(*(and_(model.type == kind, getattr(model, field) == value) for kind, (field, value) in CONTACT_RULES.items()))


def is_attempt_of(model: Any = Activity) -> ColumnElement[bool]:
    """An outbound call or email, in SQL (``is_attempt`` in Python)."""
    return model.type.in_(ATTEMPT_TYPES) & (model.direction == "outbound")


def is_contact(kind: str, direction: str, outcome: str | None) -> bool:
    rule = CONTACT_RULES.get(kind)
    return rule is not None and {"direction": direction, "outcome": outcome}[rule[0]] == rule[1]


def is_attempt(kind: str, direction: str) -> bool:
    return kind in ATTEMPT_TYPES and direction == "outbound"


@dataclass(frozen=True)
class DealWarning:
    opportunity_id: int
    kind: str  # going_dark | stale | neglected
    days: int
    message: str


class StageFacts(Protocol):
    name: str
    sla_days: int | None


class DealFacts(Protocol):
    """What the warnings read of a deal: an ``Opportunity``, or a plain row of its columns."""

    id: int
    status: str
    created_at: datetime
    stage_entered_at: datetime
    last_activity_at: datetime | None
    last_inbound_at: datetime | None

    @property
    def stage(self) -> StageFacts: ...


# Per deal, whether a follow-up is due in the future: the one fact the warnings read that the
# deal does not keep itself (its latest activity and inbound interaction it does, kept by
# ``services.latest``). Built once; bind "org" and "now".
WARNING_FACTS = (
    select(FollowUp.id)
    .where(FollowUp.organization_id == bindparam("org"), FollowUp.opportunity_id == Opportunity.id, FollowUp.done_at.is_(None),
           FollowUp.deleted_at.is_(None), FollowUp.due_at > bindparam("now"))
    .correlate(Opportunity).exists()
)
_PLANNED = select(Opportunity.id, WARNING_FACTS).where(Opportunity.id.in_(bindparam("ids", expanding=True)))


@dataclass(frozen=True)
class OpenDeal:
    """An open deal as a plain row of its columns (a ``DealFacts``), for views that list many:
    one query of columns costs far less than loading ORM objects and their relations."""

    id: int
    name: str
    amount: Any
    status: str
    created_at: datetime
    stage_entered_at: datetime
    stage: Any  # the deal's Stage (``StageFacts``)
    account_name: str
    owner_id: int
    currency: str = ""
    # What the warnings read: the deal's latest inbound interaction and activity, and whether a
    # follow-up is due in the future (read in the same statement, ``services.deals.open_deals``).
    last_inbound_at: datetime | None = None
    last_activity_at: datetime | None = None
    planned: bool | None = None  # None: not read yet


def deal_warnings(session: Session, organization: Organization, deals: Iterable[DealFacts], now: datetime) -> list[DealWarning]:
    open_deals = [deal for deal in deals if deal.status == "open"]
    if not open_deals:
        return []
    followed_up = {d.id for d in open_deals if getattr(d, "planned", None)}
    unread = [deal.id for deal in open_deals if getattr(deal, "planned", None) is None]
    if unread:
        followed_up |= {deal_id for deal_id, planned in session.execute(_PLANNED, {"org": organization.id, "ids": unread, "now": now})
                        if planned}
    thresholds = Thresholds.of(organization)
    warnings: list[DealWarning] = []
    for deal in open_deals:
        warnings += warnings_for(deal.id, _ms(now - (as_utc(deal.last_inbound_at) or deal.created_at)), _ms(now - deal.stage_entered_at),
                                 _ms(now - (as_utc(deal.last_activity_at) or deal.created_at)), deal.id in followed_up, deal.stage, thresholds)
    return warnings


def _ms(elapsed: timedelta) -> int:
    return elapsed // _MILLISECOND


_MILLISECOND = timedelta(milliseconds=1)
_DAY_MS = 86_400_000


@dataclass(frozen=True)
class Thresholds:
    """An organization's days before a deal goes dark and before it is neglected."""

    dark_days: int
    neglect_days: int

    @classmethod
    def of(cls, organization: Organization) -> Thresholds:
        return cls(int(organization.setting("going_dark_days")), int(organization.setting("neglected_days")))


def warnings_for(deal_id: int, quiet_ms: int, in_stage_ms: int, idle_ms: int, planned: bool, stage: StageFacts,
                 thresholds: Thresholds) -> list[DealWarning]:
    """The one rule: an open deal's warnings from the whole milliseconds since its last inbound
    interaction, in its stage, and since its last activity (each counted from its creation when
    there is none), and whether a follow-up is due in the future. The dashboard has these
    worked out in SQL (``services.types.elapsed_ms``), the pane from the deal's timestamps."""
    warnings = []
    if (days := max(0, quiet_ms // _DAY_MS)) >= thresholds.dark_days:
        warnings.append(DealWarning(deal_id, "going_dark", days, f"No word from the customer in {days} days"))
    # Exact: 14.8 days into a 14-day stage is past its SLA, though it is "14 days" shown.
    if stage.sla_days is not None and in_stage_ms > stage.sla_days * _DAY_MS:
        days = in_stage_ms // _DAY_MS
        warnings.append(DealWarning(deal_id, "stale", days, f"{days} days in {stage.name} (SLA {stage.sla_days})"))
    if (days := max(0, idle_ms // _DAY_MS)) >= thresholds.neglect_days and not planned:
        warnings.append(DealWarning(deal_id, "neglected", days, f"No activity in {days} days and no follow-up planned"))
    return warnings


def days_since(then: datetime, now: datetime) -> int:
    """Whole days from ``then`` to ``now``, never negative."""
    return max(0, (now - then).days)

