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
from datetime import datetime
from typing import Any, Iterable, Protocol

from sqlalchemy import BigInteger, ColumnElement, and_, bindparam, case, func, literal, or_, select
from sqlalchemy.orm import Session

from services.models import IS_OPEN_DEAL, Activity, FollowUp, Opportunity, Organization, Stage, live
from services.types import UTCDateTime, elapsed_ms, greatest


# PRODUCT.md's "contact" (an inbound interaction): per activity type, the field and value that
# make it one. is_inbound_interaction (SQL) and is_contact (Python) both read this table.
CONTACT_RULES = {
    "email": ("direction", "inbound"),
    "call": ("outcome", "connected"),
    "meeting": ("outcome", "held"),
    "visit": ("outcome", "held"),
}
# An attempt: an outbound call or outbound email.
ATTEMPT_TYPES = ("call", "email")


def is_inbound_interaction(model: Any = Activity) -> ColumnElement[bool]:
    """A connected call, a held meeting or visit, an inbound email (of the activities, or of a
    rollup's keys)."""
    return or_(
        *(and_(model.type == kind, getattr(model, field) == value) for kind, (field, value) in CONTACT_RULES.items())
    )


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
    """What the warnings need of a deal: an ``Opportunity``, or a plain row of its columns."""

    id: int
    status: str

    @property
    def stage(self) -> StageFacts: ...


# -- the rule, in SQL ---------------------------------------------------------------------------
# Every view reads the warnings from ``warning_days`` over ``warning_facts``, worked out in the
# database to the millisecond (``services.types.elapsed_ms``): the pane for a contact's few
# deals, the dashboard for an organization's thousands (counted, ordered and cut to a page
# there). Bind "org", "now", "dark_days" and "neglect_days" (``warning_parameters``).

DAY_MS = 86_400_000
_DAY = literal(DAY_MS, BigInteger())
_NOW = bindparam("now", type_=UTCDateTime())

# Whether a follow-up is due in the future: the one fact the warnings read that the deal does
# not keep itself (its latest activity and inbound interaction it does, ``services.latest``).
_PLANNED = (
    select(FollowUp.id)
    .where(
        FollowUp.organization_id == bindparam("org"),
        FollowUp.opportunity_id == Opportunity.id,
        FollowUp.done_at.is_(None),
        live(FollowUp),
        FollowUp.due_at > _NOW,
    )
    .correlate(Opportunity)
    .exists()
)


def warning_facts(*conditions: ColumnElement[bool], name: str = "warning_facts", extra: tuple[Any, ...] = ()) -> Any:
    """What the rule reads of each open deal of the organization matching ``conditions``,
    worked out once per deal (a materialized CTE: the rule reads each fact several times): the
    whole milliseconds since its last inbound interaction (``quiet``), in its stage
    (``in_stage``) and since its last activity (``idle``), each counted from its creation when
    there is none; its stage's SLA; whether a follow-up is due (``planned``). ``extra``: more
    columns the caller wants beside them (``deal_id`` is always there)."""
    return (
        select(
            Opportunity.id.label("deal_id"),
            Stage.sla_days.label("sla_days"),
            elapsed_ms(func.coalesce(Opportunity.last_inbound_at, Opportunity.created_at), _NOW).label("quiet"),
            elapsed_ms(Opportunity.stage_entered_at, _NOW).label("in_stage"),
            elapsed_ms(func.coalesce(Opportunity.last_activity_at, Opportunity.created_at), _NOW).label("idle"),
            _PLANNED.label("planned"),
            *extra,
        )
        .join(Stage, Stage.id == Opportunity.stage_id)
        .where(Opportunity.organization_id == bindparam("org"), IS_OPEN_DEAL, *conditions)
        .cte(name)
        .prefix_with("MATERIALIZED")
    )


def warning_days(facts: Any) -> tuple[Any, Any, Any]:
    """The rule: per deal of ``facts`` (``warning_facts``), the whole days each warning has
    held, or NULL when it does not hold (``dark_days``, ``stale_days``, ``neglected_days``).
    Stale is exact: 14.8 days into a 14-day stage is past its SLA, though it is "14 days" shown."""
    c = facts.c
    return (
        case((c.quiet >= bindparam("dark_days", type_=BigInteger()) * _DAY, c.quiet // _DAY)).label("dark_days"),
        case(((c.sla_days.is_not(None)) & (c.in_stage > c.sla_days * _DAY), c.in_stage // _DAY)).label("stale_days"),
        case(((c.idle >= bindparam("neglect_days", type_=BigInteger()) * _DAY) & ~c.planned, c.idle // _DAY)).label(
            "neglected_days"
        ),
    )


def longest_warning(days: tuple[Any, Any, Any]) -> Any:
    """The longest of a deal's warnings in days (-1: none holds): what a list of deals needing
    a look is ordered by."""
    return greatest(*(func.coalesce(column.element, -1) for column in days))


_FACTS_OF = warning_facts(Opportunity.id.in_(bindparam("ids", expanding=True)))
_WARNINGS_OF = select(_FACTS_OF.c.deal_id, *warning_days(_FACTS_OF))


def warning_parameters(organization: Organization, now: datetime) -> dict[str, Any]:
    """What the rule binds: the organization, the moment, its days to going dark and to neglect."""
    return {
        "org": organization.id,
        "now": now,
        "dark_days": int(organization.setting("going_dark_days")),
        "neglect_days": int(organization.setting("neglected_days")),
    }


def warnings_from(
    deal_id: int, stage: StageFacts, dark_days: int | None, stale_days: int | None, neglected_days: int | None
) -> list[DealWarning]:
    """A deal's warnings in words, from the days the rule gave (``warning_days``), the longest first."""
    warnings = []
    if dark_days is not None:
        warnings.append(DealWarning(deal_id, "going_dark", dark_days, f"No word from the customer in {dark_days} days"))
    if stale_days is not None:
        warnings.append(
            DealWarning(deal_id, "stale", stale_days, f"{stale_days} days in {stage.name} (SLA {stage.sla_days})")
        )
    if neglected_days is not None:
        warnings.append(
            DealWarning(
                deal_id, "neglected", neglected_days, f"No activity in {neglected_days} days and no follow-up planned"
            )
        )
    return sorted(warnings, key=lambda w: -w.days) if len(warnings) > 1 else warnings


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
    # The rule's days (``warning_days``), read in the same statement (``services.deals.open_deals``).
    warning_days: tuple[int | None, int | None, int | None] | None = None  # None: not read yet


def deal_warnings(
    session: Session, organization: Organization, deals: Iterable[DealFacts], now: datetime
) -> list[DealWarning]:
    """The warnings of these deals as of ``now``: from the days read with them, or read here."""
    open_deals = [deal for deal in deals if deal.status == "open"]
    if not open_deals:
        return []
    days = {deal.id: deal.warning_days for deal in open_deals if getattr(deal, "warning_days", None) is not None}
    if unread := [deal.id for deal in open_deals if deal.id not in days]:
        days |= {
            row[0]: tuple(row[1:])
            for row in session.connection().execute(
                _WARNINGS_OF, warning_parameters(organization, now) | {"ids": unread}
            )
        }
    warnings: list[DealWarning] = []
    for deal in open_deals:
        warnings += warnings_from(deal.id, deal.stage, *days.get(deal.id, (None, None, None)))
    return warnings


def days_since(then: datetime, now: datetime) -> int:
    """Whole days from ``then`` to ``now``, never negative."""
    return max(0, (now - then).days)
