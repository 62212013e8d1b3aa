"""Deal health: 0 to 100, and the two or three things that cost a deal most, in words.

A deal starts at 100 and loses points for four things, each read from the deal's history as it
stood at a moment (``at``), so that the health of 14 days ago is worked out by the same rule as
today's:

* **quiet**: days since the customer's last inbound interaction (an inbound mail, a connected
  call, a held meeting or visit; the deal's creation when there is none). Nothing for the first
  ``QUIET_GRACE_DAYS``, then up to ``QUIET_COST`` at the organization's going-dark days (21).
* **cool**: the mean sentiment of the deal's last three scored interactions
  (``services.sentiment``), below zero: up to ``COOL_COST`` at -1.
* **cooling**: the last three scores each lower than the one before: ``COOLING_COST``.
* **stage**: time in the current stage past three quarters of its SLA, up to ``STAGE_COST`` at
  twice the SLA.
* **follow-ups**: ``OVERDUE_COST`` per follow-up of the deal past due and not done, at most
  ``OVERDUE_CAP``.

Every deal's health is kept by day (``DealHealth``) by ``snapshot``, run daily (``flask --app wsgi
health snapshot``): "whose health fell most in the last 14 days" compares those days. The pane
works out the health of the deals it shows as it shows them (``healths``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from datetime import date, datetime, timedelta
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, Select, and_, bindparam, delete, func, or_, select
from sqlalchemy.orm import Session

from services.deals import pipeline_stages
from services.shown import Shown
from services.models import (
    IS_OPEN_DEAL,
    Account,
    Activity,
    DealHealth,
    FollowUp,
    Opportunity,
    Organization,
    StageChange,
    live,
)
from services.signals import is_inbound_interaction
from services.types import UTCDateTime, as_utc, one_of, utcnow
from services.users import Person

QUIET_GRACE_DAYS = 3
QUIET_COST = 40
COOL_COST = 25
COOLING_COST = 10
COOLING_STEP = 0.05  # each score at least this much below the one before
STAGE_COST = 25
STAGE_FROM = 0.75  # of the SLA
OVERDUE_COST = 10
OVERDUE_CAP = 20
RECENT_SCORES = 3
SHOWN_FACTORS = 3
WINDOW_DAYS = 14  # "fell most in the last 14 days"


@dataclass(frozen=True)
class Factor:
    kind: str  # quiet | cool | cooling | stage | follow_ups
    cost: int
    words: str


@dataclass(frozen=True)
class Health:
    score: int
    factors: tuple[Factor, ...] = ()  # what cost it anything, the most first

    @property
    def shown(self) -> tuple[Factor, ...]:
        return self.factors[:SHOWN_FACTORS]

    @property
    def band(self) -> str:
        return "good" if self.score >= 70 else ("fair" if self.score >= 40 else "poor")


@dataclass
class DealFacts:
    """What the rule reads of a deal as it stood at a moment."""

    deal_id: int
    created_at: datetime
    stage_name: str
    sla_days: int | None
    stage_since: datetime
    last_inbound: datetime | None
    overdue: int
    oldest_due: datetime | None
    scores: list[tuple[str, float]] = field(default_factory=list)  # (type, score), the latest first


def _days(seconds: float) -> float:
    return max(0.0, seconds / 86400)


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def health_of(facts: DealFacts, at: datetime, dark_days: int) -> Health:
    """The rule (see the module's words), on one deal's facts."""
    factors: list[Factor] = []
    quiet = _days((at - (facts.last_inbound or facts.created_at)).total_seconds())
    if quiet > QUIET_GRACE_DAYS:
        cost = QUIET_COST * min(1.0, (quiet - QUIET_GRACE_DAYS) / max(1, dark_days - QUIET_GRACE_DAYS))
        days = int(quiet)
        words = (
            f"no reply in {days} days"
            if facts.last_inbound
            else f"no word from the customer since it opened {days} days ago"
        )
        factors.append(Factor("quiet", round(cost), words))
    scores = [score for _, score in facts.scores]
    if scores:
        mean = sum(scores) / len(scores)
        if mean < 0:
            what = _kinds(facts.scores)
            words = (
                f"the last {len(scores)} {what} read cool ({mean:+.2f} on average)"
                if len(scores) > 1
                else f"the last {what} read cool ({mean:+.2f})"
            )
            factors.append(Factor("cool", round(COOL_COST * min(1.0, -mean)), words))
        if len(scores) == RECENT_SCORES and all(
            newer <= older - COOLING_STEP for newer, older in zip(scores, scores[1:])
        ):
            factors.append(Factor("cooling", COOLING_COST, f"three cooler {_kinds(facts.scores)} in a row"))
    if facts.sla_days:
        in_stage = _days((at - facts.stage_since).total_seconds())
        ratio = in_stage / facts.sla_days
        if ratio > STAGE_FROM:
            cost = STAGE_COST * min(1.0, (ratio - STAGE_FROM) / (2 - STAGE_FROM))
            factors.append(
                Factor("stage", round(cost), f"{int(in_stage)} days in {facts.stage_name} (SLA {facts.sla_days})")
            )
    if facts.overdue:
        late = int(_days((at - facts.oldest_due).total_seconds())) if facts.oldest_due else 0
        by = f" by {late} {_plural(late, 'day', 'days')}" if late else ""
        words = (
            f"a follow-up overdue{by}"
            if facts.overdue == 1
            else f"{facts.overdue} follow-ups overdue{', the oldest' + by if by else ''}"
        )
        factors.append(Factor("follow_ups", min(OVERDUE_CAP, OVERDUE_COST * facts.overdue), words))
    factors = [f for f in factors if f.cost > 0]
    factors.sort(key=lambda f: -f.cost)
    return Health(max(0, 100 - sum(f.cost for f in factors)), tuple(factors))


def _kinds(scores: list[tuple[str, float]]) -> str:
    kinds = {kind for kind, _ in scores}
    one = len(scores) == 1
    if kinds == {"email"}:
        return "mail" if one else "mails"
    if len(kinds) == 1 and (kind := next(iter(kinds))) in ("call", "meeting", "visit"):
        return f"{kind} note" if one else f"{kind} notes"
    return "interaction" if one else "interactions"


# -- the facts, as of a moment, in SQL -----------------------------------------------------------

_AT = bindparam("at", type_=UTCDateTime())


def _latest_change(column: Any) -> Any:
    return (
        select(column)
        .where(StageChange.opportunity_id == Opportunity.id, StageChange.changed_at <= _AT)
        .order_by(StageChange.changed_at.desc(), StageChange.id.desc())
        .limit(1)
        .correlate(Opportunity)
        .scalar_subquery()
    )


def _newest(*conditions: Any) -> Any:
    """The deal's activities matching ``conditions`` up to the moment, newest first: walked
    backwards down the deal's index (ix_activities_opportunity, or ix_activities_scored for the
    scores) and stopped at the first rows wanted (an aggregate over them would read every
    activity the deal ever had)."""
    return (
        select()
        .where(
            Activity.organization_id == Opportunity.organization_id,
            Activity.opportunity_id == Opportunity.id,
            live(Activity),
            Activity.occurred_at <= _AT,
            *conditions,
        )
        .order_by(Activity.occurred_at.desc(), Activity.id.desc())
        .correlate(Opportunity)
    )


_LAST_INBOUND = _newest(is_inbound_interaction()).add_columns(Activity.occurred_at).limit(1).scalar_subquery()
# The latest scores, newest first: the n-th scored activity's type and score, each a walk that stops there.
_SCORED = [
    _newest(Activity.sentiment.is_not(None))
    .add_columns(column)
    .limit(1)
    .offset(n)
    .scalar_subquery()
    .label(f"{name}_{n}")
    for n in range(RECENT_SCORES)
    for name, column in (("type", Activity.type), ("score", Activity.sentiment))
]
_PAST_DUE = and_(
    FollowUp.organization_id == Opportunity.organization_id,
    FollowUp.opportunity_id == Opportunity.id,
    FollowUp.due_at < _AT,
    FollowUp.created_at <= _AT,
    or_(FollowUp.done_at.is_(None), FollowUp.done_at > _AT),
    or_(live(FollowUp), FollowUp.deleted_at > _AT),
)
_FACTS = select(
    Opportunity.id,
    Opportunity.created_at,
    Opportunity.stage_id,
    Opportunity.stage_entered_at,
    _latest_change(StageChange.to_stage_id).label("stage_then"),
    _latest_change(StageChange.changed_at).label("stage_since"),
    _LAST_INBOUND.label("last_inbound"),
    select(func.count()).where(_PAST_DUE).correlate(Opportunity).scalar_subquery().label("overdue"),
    select(func.min(FollowUp.due_at)).where(_PAST_DUE).correlate(Opportunity).scalar_subquery().label("oldest_due"),
    *_SCORED,
).where(Opportunity.organization_id == bindparam("org"), Opportunity.id.in_(bindparam("ids", expanding=True)))


def deal_facts(session: Session, organization: Organization, deal_ids: Iterable[int], at: datetime) -> list[DealFacts]:
    """What the rule reads of these deals (of the organization) as they stood at ``at``: their
    stage then (from their stage changes), last inbound interaction, past-due follow-ups and
    latest scores up to then, in one statement."""
    ids = list(deal_ids)
    if not ids:
        return []
    stages = {stage.id: stage for stage in pipeline_stages(session, organization.id)}
    facts = []
    for row in session.connection().execute(_FACTS, {"org": organization.id, "ids": ids, "at": at}):  # plain rows
        stage = stages[row.stage_then or row.stage_id]
        since = as_utc(row.stage_since) if row.stage_then else as_utc(row.stage_entered_at)
        scores = [
            (row._mapping[f"type_{n}"], row._mapping[f"score_{n}"])
            for n in range(RECENT_SCORES)
            if row._mapping[f"type_{n}"] is not None
        ]
        facts.append(
            DealFacts(
                row.id,
                as_utc(row.created_at),
                stage.name,
                stage.sla_days,
                since,
                as_utc(row.last_inbound),
                int(row.overdue or 0),
                as_utc(row.oldest_due),
                scores,
            )
        )
    return facts


def healths(
    session: Session, organization: Organization, deal_ids: Iterable[int], at: datetime | None = None
) -> dict[int, Health]:
    """The health of these deals at ``at`` (now), by deal."""
    at = at or utcnow()
    dark = int(organization.setting("going_dark_days"))
    return {facts.deal_id: health_of(facts, at, dark) for facts in deal_facts(session, organization, deal_ids, at)}


# -- by day: the daily job and the "fell most" lists --------------------------------------------


def snapshot(
    session: Session, organization: Organization, at: datetime | None = None, deal_ids: Iterable[int] | None = None
) -> int:
    """Keep the health of every deal open at ``at`` (now) for its local day, with its change
    since the deal's earliest kept day of the ``WINDOW_DAYS`` before. Run again the same day, it
    replaces that day's. ``deal_ids``: these deals only (what an import touched). Returns how
    many deals."""
    at = at or utcnow()
    day = at.astimezone(ZoneInfo(organization.time_zone)).date()
    # Open then: created by then, and open now or closed after then.
    query = select(Opportunity.id).where(
        Opportunity.organization_id == organization.id,
        live(Opportunity),
        Opportunity.created_at <= at,
        or_(Opportunity.status == "open", Opportunity.closed_at > at),
    )
    if deal_ids is None:
        ids = list(session.scalars(query))
        session.execute(delete(DealHealth).where(DealHealth.organization_id == organization.id, DealHealth.day == day))
    else:
        wanted = sorted(set(deal_ids))
        ids = [
            i
            for start in range(0, len(wanted), 500)
            for i in session.scalars(query.where(Opportunity.id.in_(wanted[start : start + 500])))
        ]
        for start in range(0, len(wanted), 500):
            session.execute(
                delete(DealHealth).where(
                    DealHealth.organization_id == organization.id,
                    DealHealth.day == day,
                    DealHealth.opportunity_id.in_(wanted[start : start + 500]),
                )
            )
    if not ids:
        return 0
    baseline: dict[int, tuple[date, int]] = {}
    kept = select(DealHealth.opportunity_id, DealHealth.day, DealHealth.health).where(
        DealHealth.organization_id == organization.id,
        DealHealth.day >= day - timedelta(days=WINDOW_DAYS),
        DealHealth.day < day,
    )
    chunks = [None] if deal_ids is None else [ids[start : start + 500] for start in range(0, len(ids), 500)]
    rows_kept = (
        row
        for chunk in chunks
        for row in session.execute(kept if chunk is None else kept.where(DealHealth.opportunity_id.in_(chunk)))
    )
    for deal_id, then, health in rows_kept:
        if deal_id not in baseline or then < baseline[deal_id][0]:
            baseline[deal_id] = (then, health)
    dark = int(organization.setting("going_dark_days"))
    rows = []
    for start in range(0, len(ids), 1_000):
        for facts in deal_facts(session, organization, ids[start : start + 1_000], at):
            health = health_of(facts, at, dark)
            before = baseline.get(facts.deal_id)
            rows.append(
                {
                    "organization_id": organization.id,
                    "opportunity_id": facts.deal_id,
                    "day": day,
                    "health": health.score,
                    "change": health.score - before[1] if before else None,
                    "factors": [f.words for f in health.shown],
                }
            )
    session.execute(DealHealth.__table__.insert(), rows)
    return len(rows)


@dataclass
class HealthDrop:
    deal_id: int
    name: str
    account_name: str
    owner_name: str
    health: int
    change: int
    factors: list[str]
    day: date


@cache
def _health_drops(whole: bool) -> Select[Any]:
    """``health_drops``'s statement, built once (building it cost more than running it); all
    the rows (``whole``) or the first bound ``limit``."""
    latest = select(func.max(DealHealth.day)).where(DealHealth.organization_id == bindparam("org")).scalar_subquery()
    query = (
        select(
            DealHealth.opportunity_id,
            Opportunity.name,
            Account.name,
            Opportunity.owner_id,
            DealHealth.health,
            DealHealth.change,
            DealHealth.factors,
            DealHealth.day,
            func.count().over(),
        )
        .join(Opportunity, Opportunity.id == DealHealth.opportunity_id)
        .join(Account, Account.id == Opportunity.account_id)
        .where(
            DealHealth.organization_id == bindparam("org"),
            DealHealth.day == latest,
            DealHealth.change < 0,
            # The open deals' index by organization then owner (without the organization,
            # PostgreSQL walked the whole index for the owners: 535 pages against 10).
            Opportunity.organization_id == bindparam("org"),
            one_of(Opportunity.owner_id, bindparam("owners")),
            IS_OPEN_DEAL,
        )
        .order_by(DealHealth.change, DealHealth.health, Opportunity.name, DealHealth.opportunity_id)
    )
    return query if whole else query.limit(bindparam("limit", type_=Integer()))


def health_drops(
    session: Session, organization: Organization, people: list[Person], limit: int | None = None
) -> Shown[HealthDrop]:
    """The open deals of these people whose health fell most over the last ``WINDOW_DAYS``, as of
    the latest kept day: the largest fall first. One statement (the latest day found in it)."""
    owners = {p.id: p.name for p in people}
    if not owners:
        return Shown([], 0)
    rows = (
        session.connection()
        .execute(_health_drops(limit is None), {"org": organization.id, "owners": list(owners), "limit": limit})
        .all()
    )
    return Shown(
        [
            HealthDrop(deal_id, name, account, owners[owner_id], health, change, list(factors or []), day)
            for deal_id, name, account, owner_id, health, change, factors, day, _ in rows
        ],
        rows[0][-1] if rows else 0,
    )
