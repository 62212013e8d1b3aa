"""Deal figures: the pipeline, outcomes and win rate, stage conversion, lost deals, the deals
that need a look, neglected accounts, the quarter's forecast."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Integer, String, bindparam, case, func, literal, select, union_all

from services.deals import pipeline_stages
from services.health import HealthDrop, health_drops
from services.models import IS_OPEN_DEAL, Account, FollowUp, Opportunity, Quota, Stage, live
from services.periods import Period, period_for
from services.signals import (
    DAY_MS,
    DealWarning,
    longest_warning,
    warning_days,
    warning_facts,
    warning_parameters,
    warnings_from,
)
from services.types import UTCDateTime, as_utc, by_codepoint, elapsed_ms, one_of
from services.reports.quotas import won_by_owner
from services.shown import Shown
from services.reports.scope import ReportScope, _closed_in, _in_period, owned_by, owned_by_bound, owners_of


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
    cycle_seconds: float = 0.0  # the won deals' days from created to closed, summed, in seconds
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
        return self.cycle_seconds / 86400 / self.won if self.won else None


def pipeline(scope: ReportScope) -> list[StageRow]:
    """Open deals by stage: count, amount and weighted amount (amount × stage probability)."""
    session, actor, people = scope.session, scope.actor, scope.people
    stages = {s.id: StageRow(s.id, s.name, s.probability) for s in pipeline_stages(session, actor.organization_id)}
    rows = session.connection().execute(
        select(Opportunity.stage_id, func.count(), func.sum(Opportunity.amount))
        .where(
            Opportunity.organization_id == actor.organization_id, IS_OPEN_DEAL, owned_by(Opportunity.owner_id, people)
        )
        .group_by(Opportunity.stage_id)
    )
    for stage_id, count, amount in rows:
        stages[stage_id].count = count
        stages[stage_id].amount = Decimal(amount or 0)
    return list(stages.values())


@cache
def _outcomes(form: str, dialect: str) -> Any:
    """Deals closed between "start" and "end", for an owner form (``owners_of``): the won summed
    (count, amount, sales cycle), the lost summed by reason; only the won have their cycle worked
    out. Built once per form and back end. PostgreSQL groups by hashing, in one pass; SQLite
    groups by sorting, so there the won are summed apart and only the lost are grouped (a
    third less time), which on PostgreSQL would read the deals twice."""

    def closed(*statuses: str) -> Any:
        return (
            (Opportunity.organization_id == bindparam("org"))
            & live(Opportunity)
            & Opportunity.status.in_(statuses)
            & owned_by_bound(Opportunity.owner_id, form)
            & (Opportunity.closed_at >= bindparam("start", type_=UTCDateTime()))
            & (Opportunity.closed_at < bindparam("end", type_=UTCDateTime()))
        )

    cycle = elapsed_ms(Opportunity.created_at, Opportunity.closed_at)
    if dialect == "postgresql":
        return (
            select(
                Opportunity.status,
                Opportunity.loss_reason,
                func.count(),
                func.sum(Opportunity.amount),
                func.sum(case((Opportunity.status == "won", cycle))),
            )
            .where(closed("won", "lost"))
            .group_by(Opportunity.status, Opportunity.loss_reason)
        )
    return union_all(
        select(
            literal("won"), literal(None, String()), func.count(), func.sum(Opportunity.amount), func.sum(cycle)
        ).where(closed("won")),
        select(
            literal("lost"),
            Opportunity.loss_reason,
            func.count(),
            func.sum(Opportunity.amount),
            literal(None, BigInteger()),
        )
        .where(closed("lost"))
        .group_by(Opportunity.loss_reason),
    )


def deal_outcomes(scope: ReportScope, period: Period | None = None) -> DealOutcomes:
    """Deals closed (closed_at) in the scope's period, or ``period``: win rate by count and
    amount, average deal size and sales cycle of the won, and the lost ones by reason."""
    session, actor, period = scope.session, scope.actor, period or scope.period
    form, owners = owners_of(scope.people)
    start, end = period.utc_bounds(actor.organization.time_zone)
    outcomes = DealOutcomes()
    reasons: dict[str, tuple[int, Decimal]] = {}
    # Summed in the database: a year of an organization's deals is thousands of rows.
    for status, reason, count, amount, cycle in session.connection().execute(
        _outcomes(form, session.get_bind().dialect.name),
        {"org": actor.organization_id, "start": start, "end": end, **owners},
    ):
        amount = Decimal(amount or 0)
        if status == "won":
            outcomes.won += count
            outcomes.won_amount += amount
            outcomes.cycle_seconds += float(cycle or 0) / 1000
        else:  # one row per reason
            reasons[reason] = (count, amount)
            outcomes.lost += count
            outcomes.lost_amount += amount
    outcomes.lost_by_reason = dict(sorted(reasons.items(), key=lambda item: item[0] or ""))
    return outcomes


@dataclass
class StageConversion:
    stage_id: int
    name: str
    reached: int
    moved_on: int

    @property
    def rate(self) -> float | None:
        return self.moved_on / self.reached if self.reached else None


def stage_conversion(scope: ReportScope) -> list[StageConversion]:
    """Cohort: deals created in the period. From stage S: the cohort's deals that reached a
    later stage (or were won) ÷ those that reached S, from the stage changes."""
    session, actor, period, people = scope.session, scope.actor, scope.period, scope.people
    stages = pipeline_stages(session, actor.organization_id)
    # Counted from what each deal keeps of its stage changes (``services.deals.stage_entered``):
    # one row per deal of the cohort. A deal reached stage S if it ever entered S; it moved on
    # if it was won or went further than S.
    reached = {
        stage.id: (Opportunity.stages_reached.op(">>")(literal(stage.position, Integer()))).op("&")(1) == 1
        for stage in stages
    }
    went_on = {stage.id: Opportunity.ever_won | (Opportunity.furthest_position > stage.position) for stage in stages}
    totals = (
        session.connection()
        .execute(
            select(
                *(func.sum(case((reached[stage.id], 1), else_=0)) for stage in stages),
                *(func.sum(case((reached[stage.id] & went_on[stage.id], 1), else_=0)) for stage in stages),
            ).where(
                Opportunity.organization_id == actor.organization_id,
                live(Opportunity),
                owned_by(Opportunity.owner_id, people),
                _in_period(Opportunity.created_at, actor, period),
            )
        )
        .one()
        if stages
        else ()
    )
    counted = {stage.id: (int(totals[i] or 0), int(totals[len(stages) + i] or 0)) for i, stage in enumerate(stages)}
    return [StageConversion(stage.id, stage.name, *counted.get(stage.id, (0, 0))) for stage in stages]


@dataclass
class LostDeal:
    id: int
    name: str
    owner_name: str
    amount: Decimal
    reason: str
    stage_at_loss: str
    closed_at: datetime


def lost_deals(scope: ReportScope, limit: int | None = None) -> Shown[LostDeal]:
    """Deals lost in the period with reason, amount, stage at loss and owner, the latest first
    (the counts and amounts by reason are in ``deal_outcomes``)."""
    session, actor, people = scope.session, scope.actor, scope.people
    owners = {u.id: u.name for u in people}
    stages = {s.id: s.name for s in pipeline_stages(session, actor.organization_id)}
    lost = _closed_in(actor, scope.period, people, ("lost",))
    # How many there are, as a subquery the database runs once: a window over the rows would
    # read and sort every lost deal of the period (4 ms for a year of 360 reps) where the
    # latest few are an index's first entries.
    total = select(func.count()).where(lost).correlate(None).scalar_subquery()
    deals = (
        session.connection()
        .execute(
            select(
                Opportunity.id,
                Opportunity.name,
                Opportunity.owner_id,
                Opportunity.amount,
                Opportunity.loss_reason,
                Opportunity.stage_id,
                Opportunity.closed_at,
                total,
            )
            .where(lost)
            .order_by(Opportunity.closed_at.desc(), Opportunity.id.desc())
            .limit(limit)
        )
        .all()
    )
    # A lost deal keeps the stage it was lost from (the lost move does not change stage).
    return Shown(
        [
            LostDeal(id, name, owners[owner_id], amount, reason or "", stages[stage_id], as_utc(closed_at))
            for id, name, owner_id, amount, reason, stage_id, closed_at, _ in deals
        ],
        deals[0][-1] if deals else 0,
    )


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


# The team's open deals that need a look, with the rule's days (``services.signals``) worked out
# in the database, the longest waiting first (a tie by name, then id), each row with how many
# there are: an organization's 2,500 open deals are flagged, counted, ordered and cut there, and
# only the rows read are joined to their accounts. Built once, with and without a "limit";
# bind the rule's parameters and "owners".
_ALERT_FACTS = warning_facts(
    one_of(Opportunity.owner_id, bindparam("owners")),
    name="alert_facts",
    extra=(Opportunity.name, Opportunity.owner_id, Opportunity.amount, Opportunity.stage_id, Opportunity.account_id),
)
_ALERT_DAYS = warning_days(_ALERT_FACTS)
_LONGEST = longest_warning(_ALERT_DAYS)
_FLAGGED = select(
    _ALERT_FACTS.c.deal_id,
    _ALERT_FACTS.c.name,
    _ALERT_FACTS.c.account_id,
    _ALERT_FACTS.c.owner_id,
    _ALERT_FACTS.c.amount,
    _ALERT_FACTS.c.stage_id,
    *_ALERT_DAYS,
    _LONGEST.label("longest"),
    func.count().over().label("total"),
).where(_LONGEST >= 0)


def _alerts_statement(limit: bool) -> Any:
    flagged = _FLAGGED
    if limit:
        flagged = flagged.order_by(_LONGEST.desc(), by_codepoint(_ALERT_FACTS.c.name), _ALERT_FACTS.c.deal_id).limit(
            bindparam("limit")
        )
    rows = flagged.subquery("flagged")
    return (
        select(
            rows.c.deal_id,
            rows.c.name,
            Account.name,
            *(
                rows.c[column]
                for column in ("owner_id", "amount", "stage_id", "dark_days", "stale_days", "neglected_days", "total")
            ),
        )
        .join(Account, Account.id == rows.c.account_id)
        .order_by(rows.c.longest.desc(), by_codepoint(rows.c.name), rows.c.deal_id)
    )


_ALERTS = {limit: _alerts_statement(limit) for limit in (False, True)}


def deal_alerts(scope: ReportScope, limit: int | None = None) -> Shown[DealAlert]:
    """The team's open deals that are going dark, stale or neglected (``services.signals``) at
    the scope's ``now``, the longest waiting first."""
    session, actor, now = scope.session, scope.actor, scope.now
    owners = {u.id: u.name for u in scope.people}
    if not owners:
        return Shown([], 0)
    stages = {stage.id: stage for stage in pipeline_stages(session, actor.organization_id)}
    alerts, total = [], 0
    for (
        deal_id,
        name,
        account_name,
        owner_id,
        amount,
        stage_id,
        dark,
        stale,
        neglected,
        total,
    ) in session.connection().execute(
        _ALERTS[limit is not None],
        warning_parameters(actor.organization, now) | {"owners": list(owners), "limit": limit},
    ):
        alerts.append(
            DealAlert(
                deal_id,
                name,
                account_name,
                owners[owner_id],
                amount,
                warnings_from(deal_id, stages[stage_id], dark, stale, neglected),
            )
        )
    return Shown(alerts, total)


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


def quarter_forecast(scope: ReportScope) -> Forecast:
    """Won so far in the quarter (of the scope's ``today``) + Σ(amount × probability) of open
    deals expected to close in it, against the team's revenue quota for the quarter."""
    session, actor, people, team_id = scope.session, scope.actor, scope.people, scope.team_id
    quarter = period_for("this_quarter", scope.today, actor.organization.fiscal_year_start_month)
    won = sum((amount for _, amount in won_by_owner(scope, quarter).values()), Decimal(0))
    weighted = session.connection().scalar(
        select(func.sum(Opportunity.amount * Stage.probability))
        .join(Stage, Stage.id == Opportunity.stage_id)
        .where(
            Opportunity.organization_id == actor.organization_id,
            IS_OPEN_DEAL,
            owned_by(Opportunity.owner_id, people),
            Opportunity.expected_close_date >= quarter.start,
            Opportunity.expected_close_date < quarter.end,
        )
    )
    teams = {u.team_id for u in people if u.team_id} if team_id is None else {team_id}
    quota = session.connection().scalar(
        select(func.sum(Quota.target)).where(
            Quota.organization_id == actor.organization_id,
            Quota.metric == "won_revenue",
            Quota.period == "quarter",
            Quota.period_start == quarter.start,
            Quota.team_id.in_(teams),
        )
    )
    return Forecast(
        quarter, won, Decimal(weighted or 0).quantize(Decimal("0.01")), Decimal(quota) if quota is not None else None
    )


@dataclass
class NeglectedAccount:
    id: int
    name: str
    owner_name: str
    days: int  # since the last activity with the account (or since it was created)


# The team's active accounts (with an open deal) quiet for the organization's days or longer
# (the account keeps its latest activity, ``services.latest``) and with no follow-up due ahead,
# the quietest first (a tie by name, then id), each with how many there are: flagged, counted,
# ordered and cut in the database. Built once, with and without a "limit"; bind "org",
# "owners", "now" and "quiet_since".
_QUIET = func.coalesce(Account.last_activity_at, Account.created_at)
_QUIET_DAYS = elapsed_ms(_QUIET, bindparam("now", type_=UTCDateTime())) // literal(DAY_MS, BigInteger())


def _neglected_statement(limit: bool) -> Any:
    statement = (
        select(Account.id, Account.name, Account.owner_id, _QUIET_DAYS, func.count().over())
        .where(
            Account.organization_id == bindparam("org"),
            live(Account),
            one_of(Account.owner_id, bindparam("owners")),
            _QUIET <= bindparam("quiet_since", type_=UTCDateTime()),
            # Each set read once, not probed per account (follow-ups have no index by account).
            Account.id.in_(
                select(Opportunity.account_id).where(Opportunity.organization_id == bindparam("org"), IS_OPEN_DEAL)
            ),
            Account.id.not_in(
                select(FollowUp.account_id).where(
                    FollowUp.organization_id == bindparam("org"),
                    FollowUp.account_id.is_not(None),
                    FollowUp.done_at.is_(None),
                    live(FollowUp),
                    FollowUp.due_at > bindparam("now", type_=UTCDateTime()),
                )
            ),
        )
        .order_by(_QUIET_DAYS.desc(), by_codepoint(Account.name), Account.id)
    )
    return statement.limit(bindparam("limit")) if limit else statement


_NEGLECTED = {limit: _neglected_statement(limit) for limit in (False, True)}


def neglected_accounts(scope: ReportScope, limit: int | None = None) -> Shown[NeglectedAccount]:
    """Active accounts (owned by the team, with an open deal) with no activity for N days
    (default 14) before the scope's ``now`` and no follow-up due after it, the quietest first."""
    session, actor, now = scope.session, scope.actor, scope.now
    owners = {u.id: u.name for u in scope.people}
    if not owners:
        return Shown([], 0)
    quiet_since = now - timedelta(days=int(actor.organization.setting("neglected_days")))
    rows, total = [], 0
    for account_id, name, owner_id, days, total in session.connection().execute(
        _NEGLECTED[limit is not None],
        {"org": actor.organization_id, "owners": list(owners), "now": now, "quiet_since": quiet_since, "limit": limit},
    ):
        rows.append(NeglectedAccount(account_id, name, owners[owner_id], days))
    return Shown(rows, total)


def falling_deals(scope: ReportScope, limit: int | None = None) -> Shown[HealthDrop]:
    """The team's open deals whose health fell most in the last 14 days (``services.health``),
    the largest fall first."""
    return health_drops(scope.session, scope.actor.organization, scope.people, limit)
