"""Manager figures, exactly as PRODUCT.md defines them (a first set: activity, pipeline and
deal outcomes). Each takes a session, the acting manager or admin and a period, and returns
plain data; the pane, the dashboard and CSV exports render it.

Managers see their own team; admins any team or the whole organization; reps see none of
these (their pane shows their own work). Soft-deleted records never count.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from services.access import require_role
from services.deals import pipeline_stages
from services.errors import Forbidden
from services.models import Activity, Opportunity, User
from services.periods import Period
from services.types import as_utc


@dataclass
class RepActivity:
    owner_id: int
    name: str
    counts: dict[str, int] = field(default_factory=dict)  # by activity type
    minutes: dict[str, int] = field(default_factory=dict)  # time spent, by activity type
    attempts: int = 0  # outbound calls and outbound emails
    contacts: int = 0  # connected calls, held meetings and visits, inbound emails

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def connect_rate(self) -> float | None:
        return self.contacts / self.attempts if self.attempts else None


@dataclass
class StageRow:
    stage_id: int
    name: str
    probability: Decimal
    count: int = 0
    amount: Decimal = Decimal(0)

    @property
    def weighted(self) -> Decimal:
        return self.amount * self.probability


@dataclass
class DealOutcomes:
    won: int = 0
    lost: int = 0
    won_amount: Decimal = Decimal(0)
    lost_amount: Decimal = Decimal(0)
    cycle_days: list[float] = field(default_factory=list)
    lost_by_reason: dict[str, tuple[int, Decimal]] = field(default_factory=dict)

    @property
    def win_rate(self) -> float | None:
        return self.won / (self.won + self.lost) if self.won + self.lost else None

    @property
    def win_rate_by_amount(self) -> float | None:
        total = self.won_amount + self.lost_amount
        return float(self.won_amount / total) if total else None

    @property
    def average_deal_size(self) -> Decimal | None:
        return self.won_amount / self.won if self.won else None

    @property
    def sales_cycle_days(self) -> float | None:
        return sum(self.cycle_days) / len(self.cycle_days) if self.cycle_days else None


def team_members(session: Session, actor: User, team_id: int | None = None) -> list[User]:
    """The people whose figures the actor may see: a manager's team; for an admin, the team
    asked for or everyone."""
    require_role(actor, "manager", "admin")
    if actor.role == "manager":
        if team_id not in (None, actor.team_id):
            raise Forbidden("Managers see their own team's figures.")
        team_id = actor.team_id
    query = select(User).where(User.organization_id == actor.organization_id, User.role.in_(("rep", "manager")))
    if team_id is not None:
        query = query.where(User.team_id == team_id)
    return list(session.scalars(query.order_by(User.name)))


def _in_period(column: ColumnElement, actor: User, period: Period) -> ColumnElement[bool]:
    start, end = period.utc_bounds(actor.organization.time_zone)
    return (column >= start) & (column < end)


def activity_summary(session: Session, actor: User, period: Period, team_id: int | None = None) -> list[RepActivity]:
    """Activity counts and time by rep × type, attempts, contacts and connect rate."""
    people = team_members(session, actor, team_id)
    reps = {user.id: RepActivity(user.id, user.name) for user in people}
    rows = session.execute(
        select(Activity.owner_id, Activity.type, Activity.direction, Activity.outcome, func.count(), func.sum(Activity.duration_minutes))
        .where(
            Activity.organization_id == actor.organization_id,
            Activity.deleted_at.is_(None),
            Activity.owner_id.in_(reps),
            _in_period(Activity.occurred_at, actor, period),
        )
        .group_by(Activity.owner_id, Activity.type, Activity.direction, Activity.outcome)
    )
    for owner_id, kind, direction, outcome, count, minutes in rows:
        rep = reps[owner_id]
        rep.counts[kind] = rep.counts.get(kind, 0) + count
        rep.minutes[kind] = rep.minutes.get(kind, 0) + int(minutes or 0)
        if kind in ("call", "email") and direction == "outbound":
            rep.attempts += count
        if (kind == "call" and outcome == "connected") or (kind in ("meeting", "visit") and outcome == "held") or (
            kind == "email" and direction == "inbound"
        ):
            rep.contacts += count
    return list(reps.values())


def pipeline(session: Session, actor: User, team_id: int | None = None) -> list[StageRow]:
    """Open deals by stage: count, amount and weighted amount (amount × stage probability)."""
    owners = [user.id for user in team_members(session, actor, team_id)]
    stages = {s.id: StageRow(s.id, s.name, s.probability) for s in pipeline_stages(session, actor.organization_id)}
    rows = session.execute(
        select(Opportunity.stage_id, func.count(), func.sum(Opportunity.amount))
        .where(
            Opportunity.organization_id == actor.organization_id,
            Opportunity.deleted_at.is_(None),
            Opportunity.status == "open",
            Opportunity.owner_id.in_(owners),
        )
        .group_by(Opportunity.stage_id)
    )
    for stage_id, count, amount in rows:
        stages[stage_id].count = count
        stages[stage_id].amount = Decimal(amount or 0)
    return list(stages.values())


def deal_outcomes(session: Session, actor: User, period: Period, team_id: int | None = None) -> DealOutcomes:
    """Deals closed (closed_at) in the period: win rate by count and amount, average deal size
    and sales cycle of the won, and the lost ones by reason."""
    owners = [user.id for user in team_members(session, actor, team_id)]
    outcomes = DealOutcomes()
    reasons: dict[str, list] = defaultdict(lambda: [0, Decimal(0)])
    deals = session.execute(
        select(Opportunity.status, Opportunity.amount, Opportunity.created_at, Opportunity.closed_at, Opportunity.loss_reason).where(
            Opportunity.organization_id == actor.organization_id,
            Opportunity.deleted_at.is_(None),
            Opportunity.status.in_(("won", "lost")),
            Opportunity.owner_id.in_(owners),
            _in_period(Opportunity.closed_at, actor, period),
        )
    )
    for status, amount, created_at, closed_at, reason in deals:
        if status == "won":
            outcomes.won += 1
            outcomes.won_amount += amount
            outcomes.cycle_days.append((as_utc(closed_at) - as_utc(created_at)).total_seconds() / 86400)
        else:
            outcomes.lost += 1
            outcomes.lost_amount += amount
            reasons[reason][0] += 1
            reasons[reason][1] += amount
    outcomes.lost_by_reason = {reason: (count, amount) for reason, (count, amount) in sorted(reasons.items())}
    return outcomes
