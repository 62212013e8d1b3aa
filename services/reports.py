"""Manager figures, exactly as PRODUCT.md defines them. Each takes a session, the acting
manager or admin and a period (and optionally a team or one rep), and returns plain data;
the pane's team panel, the dashboard and its CSV exports render it.

Managers see their own team; admins any team or the whole organization; reps see none of
these (their pane shows their own work). Soft-deleted records never count.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterable
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, case, func, or_, select
from sqlalchemy.orm import Session, selectinload

from services.access import get_scoped, require_role
from services.deals import pipeline_stages
from services.errors import DomainError, Forbidden
from services.models import Account, Activity, ActivityMonthRollup, ActivityRollup, FollowUp, Lead, Opportunity, Quota, Stage, StageChange, Team, User
from services.notes import SCORED_TYPES
from services.periods import Period, add_months, comparison_for, period_for
from services.signals import DealWarning, days_since, deal_warnings, is_attempt, is_contact
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

    @property
    def hours(self) -> float:
        return sum(self.minutes.values()) / 60

    @property
    def hours_by_type(self) -> dict[str, float]:
        """Time spent per activity type, in hours."""
        return {kind: minutes / 60 for kind, minutes in sorted(self.minutes.items()) if minutes}


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


def team_members(session: Session, actor: User, team_id: int | None = None, rep_id: int | None = None) -> list[User]:
    """The people whose figures the actor may see: a manager's team; for an admin, the team
    asked for or everyone; narrowed to one rep of those when ``rep_id`` is given."""
    require_role(actor, "manager", "admin")
    if actor.role == "manager":
        if team_id not in (None, actor.team_id):
            raise Forbidden("Managers see their own team's figures.")
        team_id = actor.team_id
    query = select(User).where(User.organization_id == actor.organization_id, User.role.in_(("rep", "manager")))
    if team_id is not None:
        query = query.where(User.team_id == team_id)
    if rep_id is not None:
        query = query.where(User.id == rep_id)
    return list(session.scalars(query.order_by(User.name)))


def _people(session: Session, actor: User, team_id: int | None, rep_id: int | None, people: list[User] | None) -> list[User]:
    """The people a figure covers: resolved once by the report's scope, or here for a caller
    that asks for one figure alone."""
    return people if people is not None else team_members(session, actor, team_id, rep_id)


def _in_period(column: ColumnElement, actor: User, period: Period) -> ColumnElement[bool]:
    start, end = period.utc_bounds(actor.organization.time_zone)
    return (column >= start) & (column < end)


def _month_split(start: date, end: date) -> tuple[tuple[date, date] | None, list[tuple[date, date]]]:
    """``[start, end)`` as the whole months inside it (first days of the first month and of
    the month after the last) and the day ranges left at its edges."""
    first = start if start.day == 1 else add_months(date(start.year, start.month, 1), 1)
    last = date(end.year, end.month, 1)
    if first >= last:
        return None, [(start, end)] if start < end else []
    edges = [(a, b) for a, b in ((start, first), (last, end)) if a < b]
    return (first, last), edges


def _rollup_grains(period: Period) -> list[tuple[Any, ColumnElement[bool]]]:
    """Which rollup rows serve a period's whole days: (model, condition) for the monthly grain
    (its whole months) and the daily grain (the days at its edges)."""
    months, days = _month_split(period.start, period.whole_days_end)
    grains = []
    for model, when, ranges in ((ActivityMonthRollup, ActivityMonthRollup.month, [months] if months else []),
                                (ActivityRollup, ActivityRollup.day, days)):
        if ranges:
            grains.append((model, or_(*((when >= start) & (when < end) for start, end in ranges))))
    return grains


def _partial_day(actor: User, period: Period) -> tuple[datetime, datetime] | None:
    """A to-date period's last day, from its local midnight to the period's end, in UTC: the
    part of the period the daily rollups cannot serve."""
    if period.until is None:
        return None
    zone = ZoneInfo(actor.organization.time_zone)
    midnight = datetime.combine(period.until.date(), time(), tzinfo=zone)
    return midnight.astimezone(timezone.utc), period.until.replace(tzinfo=zone).astimezone(timezone.utc)


def _closed_in(actor: User, period: Period, owners: Iterable[int], statuses: tuple[str, ...] = ("won", "lost")) -> ColumnElement[bool]:
    """Deals of these owners closed (``closed_at``) in the period with one of these statuses."""
    return (
        (Opportunity.organization_id == actor.organization_id)
        & Opportunity.deleted_at.is_(None)
        & Opportunity.status.in_(statuses)
        & Opportunity.owner_id.in_(list(owners))
        & _in_period(Opportunity.closed_at, actor, period)
    )


def activity_summary(session: Session, actor: User, period: Period, team_id: int | None = None, rep_id: int | None = None, *, people: list[User] | None = None) -> list[RepActivity]:
    """Activity counts and time by rep × type, attempts, contacts and connect rate."""
    people = _people(session, actor, team_id, rep_id, people)
    reps = {user.id: RepActivity(user.id, user.name) for user in people}
    # From the rollups, not the activities: whole months from the monthly grain, the days at
    # the edges from the daily one, so that cost follows reps × (months + edge days). A to-date
    # period's last day is partial, and read from the activities themselves.
    rows: list[Any] = []
    for model, within in _rollup_grains(period):
        rows += session.execute(
            select(model.owner_id, model.type, model.direction, model.outcome, func.sum(model.count), func.sum(model.minutes))
            .where(model.organization_id == actor.organization_id, model.owner_id.in_(reps), within)
            .group_by(model.owner_id, model.type, model.direction, model.outcome)
        ).all()
    if (partial := _partial_day(actor, period)) is not None:
        rows += session.execute(
            select(Activity.owner_id, Activity.type, Activity.direction, Activity.outcome, func.count(), func.sum(Activity.duration_minutes))
            .where(Activity.organization_id == actor.organization_id, Activity.deleted_at.is_(None), Activity.owner_id.in_(reps),
                   Activity.occurred_at >= partial[0], Activity.occurred_at < partial[1])
            .group_by(Activity.owner_id, Activity.type, Activity.direction, Activity.outcome)
        ).all()
    for owner_id, kind, direction, outcome, count, minutes in rows:
        if not count:
            continue
        rep = reps[owner_id]
        rep.counts[kind] = rep.counts.get(kind, 0) + count
        rep.minutes[kind] = rep.minutes.get(kind, 0) + int(minutes or 0)
        if is_attempt(kind, direction):
            rep.attempts += count
        if is_contact(kind, direction, outcome or None):
            rep.contacts += count
    return list(reps.values())


def pipeline(session: Session, actor: User, team_id: int | None = None, rep_id: int | None = None, *, people: list[User] | None = None) -> list[StageRow]:
    """Open deals by stage: count, amount and weighted amount (amount × stage probability)."""
    owners = [user.id for user in _people(session, actor, team_id, rep_id, people)]
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


def deal_outcomes(session: Session, actor: User, period: Period, team_id: int | None = None, rep_id: int | None = None, *, people: list[User] | None = None) -> DealOutcomes:
    """Deals closed (closed_at) in the period: win rate by count and amount, average deal size
    and sales cycle of the won, and the lost ones by reason."""
    owners = [user.id for user in _people(session, actor, team_id, rep_id, people)]
    outcomes = DealOutcomes()
    reasons: dict[str, list] = defaultdict(lambda: [0, Decimal(0)])
    deals = session.execute(
        select(Opportunity.status, Opportunity.amount, Opportunity.created_at, Opportunity.closed_at, Opportunity.loss_reason).where(
            _closed_in(actor, period, owners)
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


# -- quotas, leaderboard, drawdown ----------------------------------------------------------------


class AgainstTarget:
    """An actual against a target (a quota's, pro rata)."""

    target: Decimal
    actual: Decimal

    @property
    def ratio(self) -> float | None:
        return float(self.actual / self.target) if self.target else None

    @property
    def shown_target(self) -> Decimal:
        """The target as people read it; the ratio divides by the exact one."""
        return self.target.quantize(Decimal("0.01"))


@dataclass
class Attainment(AgainstTarget):
    owner_id: int
    name: str
    metric: str
    activity_type: str | None
    target: Decimal  # pro rata for the part of each quota period inside the report period; exact, not rounded
    actual: Decimal


def _quota_end(period: str, start: date) -> date:
    return start + timedelta(days=7) if period == "week" else add_months(start, {"month": 1, "quarter": 3, "year": 12}[period])


def quota_attainment(session: Session, actor: User, period: Period, team_id: int | None = None, rep_id: int | None = None, *,
                     people: list[User] | None = None, summary: list[RepActivity] | None = None) -> list[Attainment]:
    """Actual ÷ target per rep and quota; a target whose period only partly overlaps the
    report period counts pro rata by days of overlap."""
    members = _people(session, actor, team_id, rep_id, people)
    by_id = {user.id: user for user in members}
    targets = quota_targets(session, actor, period, list(by_id))
    by_owner = {row.owner_id: row for row in (summary if summary is not None else activity_summary(session, actor, period, people=members))}
    won = _won_by_owner(session, actor, period, list(by_id))
    rows = []
    for (owner_id, metric, kind), target in sorted(targets.items(), key=lambda item: (by_id[item[0][0]].name, item[0][1], item[0][2] or "")):
        if metric == "activities":
            actual = Decimal(by_owner[owner_id].counts.get(kind or "", 0))
        elif metric == "won_deals":
            actual = Decimal(won[owner_id][0])
        else:
            actual = won[owner_id][1]
        rows.append(Attainment(owner_id, by_id[owner_id].name, metric, kind, target, actual))
    return rows


@dataclass
class TeamAttainment(AgainstTarget):
    team_id: int
    name: str
    target: Decimal  # the team's won-revenue quotas, pro rata for the report period
    actual: Decimal  # won by the team's people in the period


def team_revenue_attainment(session: Session, actor: User, period: Period, team_id: int | None = None) -> list[TeamAttainment]:
    """Won revenue against each visible team's revenue quota, pro rata like a rep's."""
    teams = {team.id: team.name for team in visible_teams(session, actor) if team_id is None or team.id == team_id}
    targets: dict[int, Decimal] = defaultdict(Decimal)
    for team, kind, start, target in session.execute(
        select(Quota.team_id, Quota.period, Quota.period_start, Quota.target)
        .where(_overlapping_quotas(actor, period), Quota.team_id.in_(teams), Quota.metric == "won_revenue")
    ):
        targets[team] += _pro_rata(kind, start, target, period)
    if not targets:
        return []
    members = session.execute(select(User.id, User.team_id).where(User.organization_id == actor.organization_id, User.team_id.in_(targets)))
    team_of = dict(members.all())
    won: dict[int, Decimal] = defaultdict(Decimal)
    for owner_id, amount in session.execute(
        select(Opportunity.owner_id, func.sum(Opportunity.amount)).where(_closed_in(actor, period, team_of, ("won",))).group_by(Opportunity.owner_id)
    ):
        won[team_of[owner_id]] += Decimal(amount or 0)
    return [TeamAttainment(tid, teams[tid], targets[tid], won[tid]) for tid in sorted(targets, key=lambda t: teams[t])]


def _pro_rata(kind: str, start: date, target: Decimal, period: Period) -> Decimal:
    """The part of a quota's target that falls in the period, by days of overlap (a to-date
    period's partial last day as the fraction of it elapsed)."""
    end = _quota_end(kind, start)
    overlap = min(datetime.combine(end, time()), period.end_point) - datetime.combine(max(start, period.start), time())
    if overlap <= timedelta(0):
        return Decimal(0)
    days = Decimal(overlap // timedelta(seconds=1)) / Decimal(86400)
    return target * days / (end - start).days


def _overlapping_quotas(actor: User, period: Period) -> ColumnElement[bool]:
    # No quota period is longer than a year: those starting earlier cannot overlap.
    return (Quota.organization_id == actor.organization_id) & (Quota.period_start < period.end) & (
        Quota.period_start > period.start - timedelta(days=366))


def quota_targets(session: Session, actor: User, period: Period, owners: list[int]) -> dict[tuple[int, str, str | None], Decimal]:
    """Per (owner, metric, activity type): the target for the period, each quota counting pro
    rata by its days of overlap with the period."""
    targets: dict[tuple[int, str, str | None], Decimal] = defaultdict(Decimal)
    for user_id, metric, activity_type, kind, start, target in session.execute(
        select(Quota.user_id, Quota.metric, Quota.activity_type, Quota.period, Quota.period_start, Quota.target)
        .where(_overlapping_quotas(actor, period), Quota.user_id.in_(owners))
    ):
        if (share := _pro_rata(kind, start, target, period)) > 0:
            targets[(user_id, metric, activity_type)] += share
    return targets


def _won_by_owner(session: Session, actor: User, period: Period, owners: list[int]) -> dict[int, tuple[int, Decimal]]:
    rows = session.execute(
        select(Opportunity.owner_id, func.count(), func.sum(Opportunity.amount))
        .where(_closed_in(actor, period, owners, ("won",)))
        .group_by(Opportunity.owner_id)
    )
    won: dict[int, tuple[int, Decimal]] = defaultdict(lambda: (0, Decimal(0)))
    for owner_id, count, amount in rows:
        won[owner_id] = (count, Decimal(amount or 0))
    return won


@dataclass
class LeaderboardRow:
    rank: int
    owner_id: int
    name: str
    won_amount: Decimal
    won_deals: int
    activities: int


def leaderboard(session: Session, actor: User, period: Period, team_id: int | None = None, rep_id: int | None = None, *,
                people: list[User] | None = None, summary: list[RepActivity] | None = None) -> list[LeaderboardRow]:
    """Won revenue and won deals per rep in the period, ranked; activity totals beside.
    Equal revenue and deals share a rank."""
    people = _people(session, actor, team_id, rep_id, people)
    won = _won_by_owner(session, actor, period, [u.id for u in people])
    totals = {row.owner_id: row.total for row in (summary if summary is not None else activity_summary(session, actor, period, people=people))}
    ordered = sorted(people, key=lambda u: (-won[u.id][1], -won[u.id][0], u.name))
    rows: list[LeaderboardRow] = []
    for position, user in enumerate(ordered, start=1):
        tied = rows and (rows[-1].won_amount, rows[-1].won_deals) == (won[user.id][1], won[user.id][0])
        rows.append(LeaderboardRow(rows[-1].rank if tied else position, user.id, user.name, won[user.id][1], won[user.id][0],
                                   totals.get(user.id, 0)))
    return rows


@dataclass
class Drawdown:
    owner_id: int
    name: str
    recent_per_day: float  # activities per working day over the last 7 days (7 × 24 hours up to now)
    baseline_per_day: float  # the same over the 28 days before those


RECENT = timedelta(days=7)
BASELINE = timedelta(days=28)
# Any 7 consecutive 24-hour days hold exactly 5 weekdays' worth of hours, and any 28 hold 20:
# so "per working day" divides by these, however the window falls across a weekend.
WORKING_DAYS = {RECENT: 5, BASELINE: 20}


def drawdown_alerts(session: Session, actor: User, now: datetime, team_id: int | None = None, rep_id: int | None = None, *, people: list[User] | None = None) -> list[Drawdown]:
    """Reps whose activities per working day over the last 7 days (the 7 × 24 hours up to
    ``now``, so that a day only hours old is not counted as a whole one) fell below the
    organization's threshold (default 60 %) of their own rate over the 28 days before."""
    threshold = float(actor.organization.setting("drawdown_threshold"))
    people = {u.id: u.name for u in _people(session, actor, team_id, rep_id, people)}
    split, start = now - RECENT, now - RECENT - BASELINE
    recent = func.sum(case((Activity.occurred_at >= split, 1), else_=0))
    rows = session.execute(
        select(Activity.owner_id, recent, func.count())
        .where(Activity.organization_id == actor.organization_id, Activity.deleted_at.is_(None), Activity.owner_id.in_(people),
               Activity.occurred_at >= start, Activity.occurred_at < now)
        .group_by(Activity.owner_id)
    )
    alerts = []
    for owner_id, in_recent, in_both in rows:
        recent_rate = int(in_recent or 0) / WORKING_DAYS[RECENT]
        baseline_rate = (in_both - int(in_recent or 0)) / WORKING_DAYS[BASELINE]
        if baseline_rate > 0 and recent_rate < threshold * baseline_rate:
            alerts.append(Drawdown(owner_id, people[owner_id], round(recent_rate, 2), round(baseline_rate, 2)))
    return sorted(alerts, key=lambda alert: alert.name)


# -- conversion --------------------------------------------------------------------------------


@dataclass
class StageConversion:
    stage_id: int
    name: str
    reached: int
    moved_on: int

    @property
    def rate(self) -> float | None:
        return self.moved_on / self.reached if self.reached else None


def stage_conversion(session: Session, actor: User, period: Period, team_id: int | None = None, rep_id: int | None = None, *, people: list[User] | None = None) -> list[StageConversion]:
    """Cohort: deals created in the period. From stage S: the cohort's deals that reached a
    later stage (or were won) ÷ those that reached S, from the stage changes."""
    owners = [u.id for u in _people(session, actor, team_id, rep_id, people)]
    stages = pipeline_stages(session, actor.organization_id)
    position = {s.id: s.position for s in stages}
    cohort = select(Opportunity.id).where(
        Opportunity.organization_id == actor.organization_id,
        Opportunity.deleted_at.is_(None),
        Opportunity.owner_id.in_(owners),
        _in_period(Opportunity.created_at, actor, period),
    )
    furthest: dict[int, int] = {}
    won: set[int] = set()
    reached: dict[int, set[int]] = defaultdict(set)
    for deal_id, stage_id, status in session.execute(
        select(StageChange.opportunity_id, StageChange.to_stage_id, StageChange.to_status).where(StageChange.opportunity_id.in_(cohort))
    ):
        reached[stage_id].add(deal_id)
        furthest[deal_id] = max(furthest.get(deal_id, 0), position[stage_id])
        if status == "won":
            won.add(deal_id)
    rows = []
    for stage in stages:
        deals = reached[stage.id]
        moved_on = sum(1 for d in deals if d in won or furthest[d] > stage.position)
        rows.append(StageConversion(stage.id, stage.name, len(deals), moved_on))
    return rows


@dataclass
class LeadSource:
    source: str
    created: int
    converted: int

    @property
    def rate(self) -> float | None:
        return self.converted / self.created if self.created else None


def lead_conversion(session: Session, actor: User, period: Period, team_id: int | None = None, rep_id: int | None = None, *, people: list[User] | None = None) -> list[LeadSource]:
    """Per source: leads created in the period that converted ÷ leads created in the period.
    A lead belongs to its owner's team, so the figure follows the team and rep filters."""
    owners = [u.id for u in _people(session, actor, team_id, rep_id, people)]
    rows = session.execute(
        select(Lead.source, func.count(), func.count(Lead.converted_at))
        .where(Lead.organization_id == actor.organization_id, Lead.deleted_at.is_(None), Lead.owner_id.in_(owners),
               _in_period(Lead.created_at, actor, period))
        .group_by(Lead.source)
        .order_by(Lead.source)
    )
    return [LeadSource(source, created, converted) for source, created, converted in rows]


# -- patterns, trends, leads ---------------------------------------------------------------------


def weekday_pattern(session: Session, actor: User, period: Period, team_id: int | None = None, rep_id: int | None = None, *, people: list[User] | None = None) -> dict[int, list[int]]:
    """Activity counts by local weekday (Monday first), per rep."""
    people = [u.id for u in _people(session, actor, team_id, rep_id, people)]
    pattern = {owner_id: [0] * 7 for owner_id in people}
    rows = list(session.execute(
        select(ActivityRollup.owner_id, ActivityRollup.day, func.sum(ActivityRollup.count))
        .where(ActivityRollup.organization_id == actor.organization_id, ActivityRollup.owner_id.in_(people),
               ActivityRollup.day >= period.start, ActivityRollup.day < period.whole_days_end)
        .group_by(ActivityRollup.owner_id, ActivityRollup.day)
    ))
    if (partial := _partial_day(actor, period)) is not None and period.until is not None:
        rows += [(owner_id, period.until.date(), count) for owner_id, count in session.execute(
            select(Activity.owner_id, func.count())
            .where(Activity.organization_id == actor.organization_id, Activity.deleted_at.is_(None), Activity.owner_id.in_(people),
                   Activity.occurred_at >= partial[0], Activity.occurred_at < partial[1])
            .group_by(Activity.owner_id)
        )]
    for owner_id, day, count in rows:
        pattern[owner_id][day.weekday()] += int(count or 0)
    return pattern


@dataclass
class MonthPoint:
    month: date
    won_amount: Decimal = Decimal(0)
    won_deals: int = 0
    lost_deals: int = 0
    activities: int = 0

    @property
    def win_rate(self) -> float | None:
        return self.won_deals / (self.won_deals + self.lost_deals) if self.won_deals + self.lost_deals else None


def monthly_trends(session: Session, actor: User, today: date, months: int = 12, team_id: int | None = None, rep_id: int | None = None, *, people: list[User] | None = None) -> list[MonthPoint]:
    """The last ``months`` calendar months (this one included): won amount and deals, win rate,
    activities."""
    if months not in (12, 24):
        raise DomainError("Trends cover 12 or 24 months.")
    owners = [u.id for u in _people(session, actor, team_id, rep_id, people)]
    first = add_months(date(today.year, today.month, 1), -(months - 1))
    points = {add_months(first, n): MonthPoint(add_months(first, n)) for n in range(months)}
    span = Period(first, add_months(first, months))
    for month, count in session.execute(
        select(ActivityMonthRollup.month, func.sum(ActivityMonthRollup.count))
        .where(ActivityMonthRollup.organization_id == actor.organization_id, ActivityMonthRollup.owner_id.in_(owners),
               ActivityMonthRollup.month >= span.start, ActivityMonthRollup.month < span.end)
        .group_by(ActivityMonthRollup.month)
    ):
        points[month].activities += int(count or 0)
    zone = ZoneInfo(actor.organization.time_zone)
    for status, amount, closed_at in session.execute(
        select(Opportunity.status, Opportunity.amount, Opportunity.closed_at).where(_closed_in(actor, span, owners))
    ):
        local = as_utc(closed_at).astimezone(zone).date()
        point = points[date(local.year, local.month, 1)]
        if status == "won":
            point.won_deals += 1
            point.won_amount += amount
        else:
            point.lost_deals += 1
    return list(points.values())


@dataclass
class ResponseTime:
    owner_id: int
    name: str
    leads: int
    answered: int
    median_hours: float | None
    within_target: int

    @property
    def share_within_target(self) -> float | None:
        return self.within_target / self.leads if self.leads else None


def lead_response_times(session: Session, actor: User, period: Period, team_id: int | None = None, rep_id: int | None = None, *, people: list[User] | None = None) -> list[ResponseTime]:
    """From a lead's creation to its first outbound call, email or meeting: the median per rep,
    and the share of the period's leads answered within the organization's target."""
    people = {u.id: u for u in _people(session, actor, team_id, rep_id, people)}
    target_hours = float(actor.organization.setting("lead_response_target_hours"))
    # Each lead's first touch, looked up per lead of the period (ix_activities_lead).
    first_touch = (
        select(Activity.occurred_at)
        .where(Activity.organization_id == actor.organization_id, Activity.lead_id == Lead.id, Activity.deleted_at.is_(None),
               Activity.direction == "outbound", Activity.type.in_(("call", "email", "meeting")))
        .order_by(Activity.occurred_at).limit(1)
        .correlate(Lead)
        .scalar_subquery()
    )
    waits: dict[int, list[float | None]] = defaultdict(list)
    for owner_id, created_at, first in session.execute(
        select(Lead.owner_id, Lead.created_at, first_touch)
        .where(Lead.organization_id == actor.organization_id, Lead.deleted_at.is_(None), Lead.owner_id.in_(people),
               _in_period(Lead.created_at, actor, period))
    ):
        waits[owner_id].append((as_utc(first) - as_utc(created_at)).total_seconds() / 3600 if first is not None else None)
    rows = []
    for owner_id, user in people.items():
        answered = sorted(w for w in waits[owner_id] if w is not None)
        median = statistics.median(answered) if answered else None
        rows.append(ResponseTime(owner_id, user.name, len(waits[owner_id]), len(answered), median,
                                 sum(1 for w in answered if w <= target_hours)))
    return rows


# -- deals that need a look -----------------------------------------------------------------------


@dataclass
class LostDeal:
    id: int
    name: str
    owner_name: str
    amount: Decimal
    reason: str
    stage_at_loss: str
    closed_at: datetime


def lost_deals(session: Session, actor: User, period: Period, team_id: int | None = None, rep_id: int | None = None, *, people: list[User] | None = None) -> list[LostDeal]:
    """Deals lost in the period with reason, amount, stage at loss and owner (the counts and
    amounts by reason are in ``deal_outcomes``)."""
    owners = {u.id: u.name for u in _people(session, actor, team_id, rep_id, people)}
    stages = {s.id: s.name for s in pipeline_stages(session, actor.organization_id)}
    deals = session.scalars(
        select(Opportunity).where(_closed_in(actor, period, owners, ("lost",))).order_by(Opportunity.closed_at.desc())
    )
    # A lost deal keeps the stage it was lost from (the lost move does not change stage).
    return [LostDeal(d.id, d.name, owners[d.owner_id], d.amount, d.loss_reason or "", stages[d.stage_id], d.closed_at) for d in deals]


@dataclass
class DealAlert:
    """One open deal that needs a look, with every reason it does (going dark, stale,
    neglected), the longest first."""

    opportunity_id: int
    name: str
    account_name: str
    owner_name: str
    amount: Decimal
    warnings: list[DealWarning]

    @property
    def kinds(self) -> list[str]:
        return [w.kind for w in self.warnings]

    @property
    def days(self) -> int:
        return max(w.days for w in self.warnings)

    @property
    def reasons(self) -> str:
        return "; ".join(w.message for w in self.warnings)


CHART_PARTS = 4  # colours a stacked bar has (pane.css: .part-0 to .part-3)
SHOWN_ALERTS = 40  # the dashboard lists this many and says how many more the CSV holds


def deal_alerts(session: Session, actor: User, now: datetime, team_id: int | None = None, rep_id: int | None = None, *, people: list[User] | None = None) -> list[DealAlert]:
    """The team's open deals that are going dark, stale or neglected (``services.signals``)."""
    owners = [u.id for u in _people(session, actor, team_id, rep_id, people)]
    deals = list(session.scalars(
        select(Opportunity).where(
            Opportunity.organization_id == actor.organization_id, Opportunity.deleted_at.is_(None), Opportunity.status == "open",
            Opportunity.owner_id.in_(owners),
        ).options(selectinload(Opportunity.stage), selectinload(Opportunity.owner), selectinload(Opportunity.account))
    ))
    by_deal: dict[int, list[DealWarning]] = defaultdict(list)
    for warning in deal_warnings(session, actor.organization, deals, now):
        by_deal[warning.opportunity_id].append(warning)
    alerts = [
        DealAlert(deal.id, deal.name, deal.account.name, deal.owner.name, deal.amount, sorted(by_deal[deal.id], key=lambda w: -w.days))
        for deal in deals if deal.id in by_deal
    ]
    return sorted(alerts, key=lambda a: (-a.days, a.name, a.opportunity_id))


@dataclass
class Forecast:
    quarter: Period
    won: Decimal
    weighted_open: Decimal
    quota: Decimal | None

    @property
    def total(self) -> Decimal:
        return self.won + self.weighted_open

    @property
    def attainment(self) -> float | None:
        return float(self.total / self.quota) if self.quota else None


def quarter_forecast(session: Session, actor: User, today: date, team_id: int | None = None, rep_id: int | None = None, *, people: list[User] | None = None) -> Forecast:
    """Won so far in the quarter + Σ(amount × probability) of open deals expected to close in
    it, against the team's revenue quota for the quarter."""
    people = _people(session, actor, team_id, rep_id, people)
    owners = [u.id for u in people]
    quarter = period_for("this_quarter", today, actor.organization.fiscal_year_start_month)
    won = sum((amount for _, amount in _won_by_owner(session, actor, quarter, owners).values()), Decimal(0))
    weighted = session.scalar(
        select(func.sum(Opportunity.amount * Stage.probability))
        .join(Stage, Stage.id == Opportunity.stage_id)
        .where(Opportunity.organization_id == actor.organization_id, Opportunity.deleted_at.is_(None), Opportunity.status == "open",
               Opportunity.owner_id.in_(owners), Opportunity.expected_close_date >= quarter.start,
               Opportunity.expected_close_date < quarter.end)
    )
    teams = {u.team_id for u in people if u.team_id} if team_id is None else {team_id}
    quota = session.scalar(
        select(func.sum(Quota.target)).where(
            Quota.organization_id == actor.organization_id, Quota.metric == "won_revenue", Quota.period == "quarter",
            Quota.period_start == quarter.start, Quota.team_id.in_(teams),
        )
    )
    return Forecast(quarter, won, Decimal(weighted or 0).quantize(Decimal("0.01")), Decimal(quota) if quota is not None else None)


@dataclass
class NoteQuality:
    activity_id: int
    owner_name: str
    type: str
    occurred_at: datetime
    answered: int
    questions: int

    @property
    def share(self) -> float:
        return self.answered / self.questions if self.questions else 1.0

    @property
    def flagged(self) -> bool:
        return self.questions > 0 and self.answered == 0


def _scored_notes(actor: User, period: Period, owners: Iterable[int]) -> ColumnElement[bool]:
    return (
        (Activity.organization_id == actor.organization_id) & Activity.deleted_at.is_(None) & Activity.type.in_(SCORED_TYPES)
        & Activity.owner_id.in_(list(owners)) & _in_period(Activity.occurred_at, actor, period)
    )


def _flagged() -> ColumnElement[bool]:
    return (func.coalesce(Activity.checklist_questions, 0) > 0) & (func.coalesce(Activity.checklist_answered, 0) == 0)


def note_quality(session: Session, actor: User, period: Period, team_id: int | None = None, rep_id: int | None = None, *, people: list[User] | None = None) -> list[NoteQuality]:
    """For calls and visits in the period: the share of their type's checklist questions the
    note answers ("Question: answer" lines, scored as the note was written: ``services.notes``);
    an empty note, or one answering none, is flagged."""
    owners = {u.id: u.name for u in _people(session, actor, team_id, rep_id, people)}
    rows = session.execute(
        select(Activity.id, Activity.owner_id, Activity.type, Activity.occurred_at, Activity.checklist_answered, Activity.checklist_questions)
        .where(_scored_notes(actor, period, owners)).order_by(Activity.occurred_at, Activity.id)
    )
    return [NoteQuality(id_, owners[owner_id], kind, as_utc(when), answered or 0, questions or 0)
            for id_, owner_id, kind, when, answered, questions in rows]


@dataclass(frozen=True)
class NoteQualityTotals:
    notes: int  # calls and visits in the period
    flagged: int  # whose note answers none of the checklist


def note_quality_totals(session: Session, actor: User, period: Period, team_id: int | None = None, rep_id: int | None = None, *,
                        people: list[User] | None = None) -> NoteQualityTotals:
    """The dashboard's line on note quality: from the rollups (which count flagged notes beside
    all activities), and the activities themselves for a to-date period's partial last day."""
    owners = [u.id for u in _people(session, actor, team_id, rep_id, people)]
    total = flagged = 0
    for model, within in _rollup_grains(period):
        notes, marked = session.execute(
            select(func.coalesce(func.sum(model.count), 0), func.coalesce(func.sum(model.flagged), 0))
            .where(model.organization_id == actor.organization_id, model.owner_id.in_(owners), model.type.in_(SCORED_TYPES), within)
        ).one()
        total, flagged = total + int(notes), flagged + int(marked)
    if (partial := _partial_day(actor, period)) is not None:
        notes, marked = session.execute(
            select(func.count(), func.coalesce(func.sum(case((_flagged(), 1), else_=0)), 0))
            .where(_scored_notes(actor, period, owners), Activity.occurred_at >= partial[0])
        ).one()
        total, flagged = total + int(notes), flagged + int(marked)
    return NoteQualityTotals(total, flagged)


# -- the dashboard's view model -------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A figure beside its comparison: the difference and the change in per cent."""

    now: int
    before: int

    @property
    def difference(self) -> int:
        return self.now - self.before

    @property
    def ratio(self) -> float | None:
        return (self.now - self.before) / self.before if self.before else None


@dataclass
class NeglectedAccount:
    id: int
    name: str
    owner_name: str
    days: int  # since the last activity with the account (or since it was created)


def neglected_accounts(session: Session, actor: User, now: datetime, team_id: int | None = None, rep_id: int | None = None, *, people: list[User] | None = None) -> list[NeglectedAccount]:
    """Active accounts (owned by the team, with an open deal) with no activity for N days
    (default 14) and no follow-up due in the future."""
    people = {u.id: u.name for u in _people(session, actor, team_id, rep_id, people)}
    quiet_days = int(actor.organization.setting("neglected_days"))
    org_id = actor.organization_id
    active = session.execute(
        select(Account.id, Account.name, Account.owner_id, Account.created_at).where(
            Account.organization_id == org_id, Account.deleted_at.is_(None), Account.owner_id.in_(people),
            Account.id.in_(select(Opportunity.account_id).where(Opportunity.organization_id == org_id, Opportunity.status == "open",
                                                                 Opportunity.deleted_at.is_(None))),
        )
    ).all()
    ids = [row.id for row in active]
    # The latest activity per account: one index probe each (ix_activities_account), not a
    # scan of every activity the accounts ever had.
    latest = (
        select(Activity.occurred_at)
        .where(Activity.organization_id == org_id, Activity.account_id == Account.id, Activity.deleted_at.is_(None))
        .order_by(Activity.occurred_at.desc()).limit(1)
        .correlate(Account)
        .scalar_subquery()
    )
    last = dict(session.execute(select(Account.id, latest).where(Account.organization_id == org_id, Account.id.in_(ids))).all())
    planned = set(session.scalars(
        select(FollowUp.account_id).where(FollowUp.organization_id == org_id, FollowUp.account_id.in_(ids), FollowUp.done_at.is_(None),
                                          FollowUp.deleted_at.is_(None), FollowUp.due_at > now)
    ))
    rows = []
    for account_id, name, owner_id, created_at in active:
        days = days_since(as_utc(last.get(account_id)) or as_utc(created_at), now)
        if days >= quiet_days and account_id not in planned:
            rows.append(NeglectedAccount(account_id, name, people[owner_id], days))
    return sorted(rows, key=lambda r: (-r.days, r.name))


@dataclass
class ReportScope:
    """What a report is about, resolved once per request: who asks, for which period, team
    and rep, and so which people; every figure of the report reads it."""

    session: Session
    actor: User
    period: Period
    today: date
    now: datetime
    team_id: int | None = None
    rep_id: int | None = None
    year_over_year: bool = False
    months: int = 12

    @cached_property
    def people(self) -> list[User]:
        return team_members(self.session, self.actor, self.team_id, self.rep_id)

    @cached_property
    def comparison(self) -> Period:
        return comparison_for(self.period, self.year_over_year)


def figure(compute: Callable[..., Any], at: str | None = "period", *, shared: str | None = None) -> cached_property:
    """A figure of the report: ``compute`` run once, when first read, for the report's scope
    (its people resolved once). ``at`` names what the figure is for (the report's period or
    comparison, the scope's now or today, or nothing); ``shared`` another figure it reuses."""

    def read(report: TeamReport) -> Any:
        scope = report.scope
        args = () if at is None else (getattr(report if at in ("period", "comparison") else scope, at),)
        extra = {"summary": getattr(report, shared)} if shared else {}
        return compute(scope.session, scope.actor, *args, scope.team_id, scope.rep_id, people=scope.people, **extra)

    return cached_property(read)


class TeamReport:
    """Every figure for one scope: each computed once, when first read, so that a CSV export
    computes its one table and the dashboard each figure once."""

    def __init__(self, scope: ReportScope) -> None:
        self.scope = scope
        self.period, self.team_id, self.rep_id = scope.period, scope.team_id, scope.rep_id

    @property
    def comparison(self) -> Period:
        return self.scope.comparison

    activity = figure(activity_summary)  # list[RepActivity]
    weekdays = figure(weekday_pattern)  # owner → counts Monday to Sunday
    quota = figure(quota_attainment, shared="activity")  # list[Attainment]
    pipeline = figure(pipeline, at=None)  # list[StageRow]
    outcomes = figure(deal_outcomes)  # DealOutcomes
    outcomes_before = figure(deal_outcomes, at="comparison")
    conversion = figure(stage_conversion)  # list[StageConversion]
    leaderboard = figure(leaderboard, shared="activity")  # list[LeaderboardRow]
    lost = figure(lost_deals)  # list[LostDeal]
    leads = figure(lead_conversion)  # list[LeadSource]
    response = figure(lead_response_times)  # list[ResponseTime]
    alerts = figure(deal_alerts, at="now")  # list[DealAlert]
    neglected = figure(neglected_accounts, at="now")  # list[NeglectedAccount]
    drawdowns = figure(drawdown_alerts, at="now")  # list[Drawdown]
    forecast = figure(quarter_forecast, at="today")  # Forecast
    notes = figure(note_quality)  # list[NoteQuality], for the CSV
    note_totals = figure(note_quality_totals)  # NoteQualityTotals, for the page

    @cached_property
    def activity_before(self) -> dict[int, int]:  # owner → total activities in the comparison period
        return {row.owner_id: row.total for row in figure(activity_summary, at="comparison").func(self)}

    @cached_property
    def team_quota(self) -> list[TeamAttainment]:
        scope = self.scope
        return team_revenue_attainment(scope.session, scope.actor, self.period, scope.team_id) if scope.rep_id is None else []

    @cached_property
    def trends(self) -> list[MonthPoint]:
        scope = self.scope
        return monthly_trends(scope.session, scope.actor, scope.today, scope.months, scope.team_id, scope.rep_id, people=scope.people)

    @property
    def activity_total(self) -> int:
        return sum(row.total for row in self.activity)

    @property
    def activity_total_before(self) -> int:
        return sum(self.activity_before.values())

    @property
    def activity_change(self) -> Change:
        return Change(self.activity_total, self.activity_total_before)

    @property
    def won_change(self) -> Change:
        return Change(self.outcomes.won, self.outcomes_before.won)

    @property
    def pipeline_rows(self) -> list[tuple[StageRow, StageConversion | None]]:
        """Each open stage beside its conversion, matched by stage (not by position)."""
        conversion = {row.stage_id: row for row in self.conversion}
        return [(row, conversion.get(row.stage_id)) for row in self.pipeline]


    @property
    def activity_types(self) -> list[str]:
        """The activity types anyone in the report spent time on, for the time table."""
        return sorted({kind for row in self.activity for kind in row.hours_by_type})

    @property
    def activity_bars(self) -> list[tuple[str, list[tuple[str, int]]]]:
        """Per rep, the stack of activity counts by type: the three largest types, then the rest
        as "other", so that the chart's four colours and its legend name every segment."""
        kinds = sorted({k for row in self.activity for k in row.counts}, key=lambda k: (-sum(r.counts.get(k, 0) for r in self.activity), k))
        named, rest = kinds[:CHART_PARTS - 1], kinds[CHART_PARTS - 1:]
        if len(rest) == 1:
            named, rest = kinds, []
        return [
            (row.name, [(kind, row.counts.get(kind, 0)) for kind in named] + ([("other", sum(row.counts.get(k, 0) for k in rest))] if rest else []))
            for row in self.activity
        ]

    @property
    def pipeline_bars(self) -> list[tuple[str, int]]:
        return [(row.name, row.count) for row in self.pipeline]


def team_report(session: Session, actor: User, period: Period, today: date, now: datetime, team_id: int | None = None,
                rep_id: int | None = None, *, year_over_year: bool = False, months: int = 12) -> TeamReport:
    """Every figure for one period and team, with the comparison period (the one before, or
    the same one a year earlier) beside the activity and outcome figures, and ``months`` of
    trends: what the dashboard and its CSV exports show. The scope is checked here (a rep, or
    a manager asking for another team, is refused before anything is computed)."""
    if months not in (12, 24):
        raise DomainError("Trends cover 12 or 24 months.")
    scope = ReportScope(session, actor, period, today, now, team_id, rep_id, year_over_year, months)
    scope.people  # noqa: B018 - resolves and checks the scope now
    return TeamReport(scope)


def visible_teams(session: Session, actor: User) -> list[Team]:
    """The teams the actor may pick on the dashboard: an admin's all, a manager's own."""
    require_role(actor, "manager", "admin")
    query = select(Team).where(Team.organization_id == actor.organization_id).order_by(Team.name)
    if actor.role == "manager":
        query = query.where(Team.id == actor.team_id)
    return list(session.scalars(query))


@dataclass
class RepAccount:
    id: int
    name: str
    open_deals: int
    last_activity: datetime | None


def rep_accounts(session: Session, actor: User, rep_id: int) -> tuple[User, list[RepAccount]]:
    """The accounts a rep owns or worked on in the last 90 days, most recently touched first:
    "how is this rep doing with this client"."""
    rep = get_scoped(session, actor, User, rep_id, "rep")
    if rep.id not in {u.id for u in team_members(session, actor)}:
        raise Forbidden("Managers see their own team's reps.")
    since = datetime.now(timezone.utc) - timedelta(days=90)
    worked = select(Activity.account_id).where(Activity.organization_id == actor.organization_id, Activity.owner_id == rep.id,
                                               Activity.occurred_at >= since, Activity.account_id.is_not(None))
    accounts = session.execute(
        select(Account.id, Account.name).where(
            Account.organization_id == actor.organization_id, Account.deleted_at.is_(None),
            (Account.owner_id == rep.id) | Account.id.in_(worked),
        )
    ).all()
    ids = [a.id for a in accounts]
    last = dict(session.execute(
        select(Activity.account_id, func.max(Activity.occurred_at)).where(
            Activity.organization_id == actor.organization_id, Activity.owner_id == rep.id, Activity.deleted_at.is_(None),
            Activity.account_id.in_(ids)).group_by(Activity.account_id)
    ).all())
    deals = dict(session.execute(
        select(Opportunity.account_id, func.count()).where(
            Opportunity.organization_id == actor.organization_id, Opportunity.owner_id == rep.id, Opportunity.status == "open",
            Opportunity.deleted_at.is_(None), Opportunity.account_id.in_(ids)).group_by(Opportunity.account_id)
    ).all())
    rows = [RepAccount(i, name, deals.get(i, 0), as_utc(last.get(i))) for i, name in accounts]
    never = datetime.min.replace(tzinfo=timezone.utc)
    return rep, sorted(rows, key=lambda r: (r.last_activity or never, r.name), reverse=True)


# -- the manager's panel in the pane ---------------------------------------------------------------


@dataclass
class PanelRow:
    owner_id: int
    name: str
    this_week: int
    last_week: int
    calls: int
    calls_target: Decimal | None


@dataclass
class TeamPanel:
    rows: list[PanelRow]
    pipeline_bars: list[tuple[str, int]]
    weighted: Decimal
    quarter: DealOutcomes
    drawdowns: list[Drawdown]
    alerts: list[DealAlert]
    leaders: list[LeaderboardRow]

    @property
    def alert_counts(self) -> dict[str, int]:
        """Deals per kind of alert (a deal both stale and going dark counts in each)."""
        counts: dict[str, int] = defaultdict(int)
        for alert in self.alerts:
            for kind in alert.kinds:
                counts[kind] += 1
        return dict(counts)


def team_panel(session: Session, actor: User, today: date, now: datetime) -> TeamPanel:
    """The compact view for the pane: this week against last, calls against their (pro rata)
    quota, the funnel, this quarter's win rate, who is slipping, deals to look at, leaders."""
    week = period_for("this_week", today)
    so_far = Period(week.start, today + timedelta(days=1), "wtd")
    # Monday to today against the same days of last week.
    before = Period(so_far.start - timedelta(days=7), so_far.end - timedelta(days=7), "wtd_previous")
    quarter = period_for("this_quarter", today, actor.organization.fiscal_year_start_month)
    previous = {row.owner_id: row.total for row in activity_summary(session, actor, before)}
    summary = activity_summary(session, actor, so_far)
    targets = quota_targets(session, actor, so_far, [r.owner_id for r in summary])
    rows = [
        PanelRow(r.owner_id, r.name, r.total, previous.get(r.owner_id, 0), r.counts.get("call", 0),
                 targets[(r.owner_id, "activities", "call")].quantize(Decimal("0.01")) if (r.owner_id, "activities", "call") in targets else None)
        for r in summary
    ]
    stages = pipeline(session, actor)
    return TeamPanel(
        rows=rows,
        pipeline_bars=[(s.name, s.count) for s in stages],
        weighted=sum((s.weighted for s in stages), Decimal(0)),
        quarter=deal_outcomes(session, actor, quarter),
        drawdowns=drawdown_alerts(session, actor, now),
        alerts=deal_alerts(session, actor, now),
        leaders=leaderboard(session, actor, quarter)[:5],
    )
