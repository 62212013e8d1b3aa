"""Quota attainment for reps and teams (pro rata by days of overlap), and the leaderboard."""

from __future__ import annotations

from typing import Any

from collections import defaultdict
from dataclasses import dataclass
from functools import cache, lru_cache
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, Select, bindparam, cast, func, null, or_, select, union_all
from sqlalchemy.orm import Session

from services.models import Opportunity, Quota, User, live
from services.periods import Period, add_months
from services.types import UTCDateTime, one_of
from services.reports.activity import activity_summary, RepActivity
from services.reports.scope import ReportScope, owned_by_bound, owners_of
from services.shown import Shown


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
    return (
        start + timedelta(days=7)
        if period == "week"
        else add_months(start, {"month": 1, "quarter": 3, "year": 12}[period])
    )


def quota_attainment(
    scope: ReportScope, *, summary: list[RepActivity] | None = None, won: dict[int, tuple[int, Decimal]] | None = None
) -> list[Attainment]:
    """Actual ÷ target per rep and quota; a target whose period only partly overlaps the
    report period counts pro rata by days of overlap. (``summary`` and ``won``: the report's
    ``activity_summary`` and ``won_by_owner``, when it has read them.)"""
    session, actor, period = scope.session, scope.actor, scope.period
    by_id = {user.id: user for user in scope.people}
    targets = quota_targets(session, actor, period, list(by_id))
    by_owner = {row.owner_id: row for row in (summary if summary is not None else activity_summary(scope))}
    won = won if won is not None else won_by_owner(scope)
    rows = []
    for (owner_id, metric, kind), target in sorted(
        targets.items(), key=lambda item: (by_id[item[0][0]].name, item[0][1], item[0][2] or "")
    ):
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


def team_revenue_attainment(
    scope: ReportScope, *, won: dict[int, tuple[int, Decimal]] | None = None
) -> list[TeamAttainment]:
    """Won revenue against each visible team's revenue quota, pro rata like a rep's: what the
    team's people (its reps and managers, as every figure counts them) won in the period. None
    for one rep's scope. (``won``: the report's ``won_by_owner``, when it has read it.)"""
    session, actor, period, team_id = scope.session, scope.actor, scope.period, scope.team_id
    if scope.rep_id is not None:
        return []
    named = {team.id: team.name for team in scope.teams if team_id is None or team.id == team_id}
    targets: dict[int, Decimal] = defaultdict(Decimal)
    for team, kind, start, target in session.connection().execute(
        select(Quota.team_id, Quota.period, Quota.period_start, Quota.target).where(
            _overlapping_quotas(actor.organization_id, period.start, period.end, _reach(period)),
            Quota.team_id.in_(named),
            Quota.metric == "won_revenue",
        )
    ):
        targets[team] += _pro_rata(kind, start, target, period)
    if not targets:
        return []
    members = [person for person in scope.people if person.team_id in targets]
    won = won if won is not None else won_by_owner(scope)
    by_team: dict[int, Decimal] = defaultdict(Decimal)
    for person in members:
        by_team[person.team_id] += won[person.id][1] if person.id in won else Decimal(0)
    return [
        TeamAttainment(tid, named[tid], targets[tid], by_team[tid]) for tid in sorted(targets, key=lambda t: named[t])
    ]


def _pro_rata(kind: str, start: date, target: Decimal, period: Period) -> Decimal:
    """The part of a quota's target that falls in the period, by days of overlap (a to-date
    period's partial last day as the fraction of it elapsed)."""
    days, length = _overlap(kind, start, period)
    return target * days / length if days else Decimal(0)


@lru_cache(maxsize=4096)
def _overlap(kind: str, start: date, period: Period) -> tuple[Decimal, int]:
    """Days of a quota period inside the report period, and the quota period's length. Every
    rep's quota for a month shares them: worked out once per (period kind, start)."""
    end = _quota_end(kind, start)
    overlap = min(datetime.combine(end, time()), period.end_point) - datetime.combine(max(start, period.start), time())
    if overlap <= timedelta(0):
        return Decimal(0), (end - start).days
    return Decimal(overlap // timedelta(seconds=1)) / Decimal(86400), (end - start).days


# The longest each kind of quota period can be: a quota starting that long before a report
# period cannot reach into it.
LONGEST = {"week": 7, "month": 31, "quarter": 92, "year": 366}


def _overlapping_quotas(organization_id: Any, start: Any, end: Any, reach: dict[str, Any]) -> ColumnElement[bool]:
    """The organization's quotas whose period can overlap the report period: started before
    it ends, and not so long before it starts that a period of their kind has ended
    (``reach``: per kind, the earliest start that can)."""
    return (
        (Quota.organization_id == organization_id)
        & (Quota.period_start < end)
        & (Quota.period_start > reach["year"])
        & or_(*((Quota.period == kind) & (Quota.period_start > reach[kind]) for kind in LONGEST))
    )


def _reach(period: Period) -> dict[str, date]:
    return {kind: period.start - timedelta(days=days) for kind, days in LONGEST.items()}


# A quota wholly inside the report period counts in full: started on or after the period's
# start, and ended by its end (``last_<kind>``: the latest start whose period has ended then).
_WHOLLY = or_(
    *(
        (Quota.period == kind)
        & (Quota.period_start >= bindparam("start"))
        & (Quota.period_start <= bindparam(f"last_{kind}"))
        for kind in LONGEST
    )
)
_OVERLAPPING = _overlapping_quotas(
    bindparam("org"), bindparam("start"), bindparam("end"), {kind: bindparam(kind) for kind in LONGEST}
)
_OWNERS = one_of(Quota.user_id, bindparam("owners"))
# Built once, with the period as parameters: the quotas wholly inside summed in the database
# (a year of an organization's monthly quotas is tens of thousands of rows), the few that
# straddle an edge read one by one and counted pro rata.
# One statement for both (a round trip less): a summed row has no period kind nor start.
_TARGETS = union_all(
    select(
        Quota.user_id,
        Quota.metric,
        Quota.activity_type,
        cast(null(), Quota.period.type),
        cast(null(), Quota.period_start.type),
        func.sum(Quota.target),
    )
    .where(_OVERLAPPING, _OWNERS, _WHOLLY)
    .group_by(Quota.user_id, Quota.metric, Quota.activity_type),
    select(Quota.user_id, Quota.metric, Quota.activity_type, Quota.period, Quota.period_start, Quota.target).where(
        _OVERLAPPING, _OWNERS, ~_WHOLLY
    ),
)


def _last_wholly_inside(period: Period) -> dict[str, date]:
    """Per kind of quota period, the latest start whose quota period has ended by the report
    period's end (a later one may still: it is then counted pro rata, which gives it in full)."""
    end = period.end_point.date()
    return {
        "last_week": end - timedelta(days=7),
        "last_month": add_months(end, -1),
        "last_quarter": add_months(end, -3),
        "last_year": add_months(end, -12),
    }


def quota_targets(
    session: Session, actor: User, period: Period, owners: list[int]
) -> dict[tuple[int, str, str | None], Decimal]:
    """Per (owner, metric, activity type): the target for the period, each quota counting pro
    rata by its days of overlap with the period."""
    targets: dict[tuple[int, str, str | None], Decimal] = defaultdict(Decimal)
    parameters = {
        "org": actor.organization_id,
        "start": period.start,
        "end": period.end,
        "owners": owners,
        **_reach(period),
        **_last_wholly_inside(period),
    }
    for user_id, metric, activity_type, kind, start, target in session.connection().execute(_TARGETS, parameters):
        if kind is None:  # the quotas wholly inside, summed
            if target:
                targets[(user_id, metric, activity_type)] += Decimal(target)
        elif (share := _pro_rata(kind, start, target, period)) > 0:
            targets[(user_id, metric, activity_type)] += share
    return targets


def won_by_owner(scope: ReportScope, period: Period | None = None) -> dict[int, tuple[int, Decimal]]:
    """Per owner of the scope, the deals won in its period (or ``period``) and their amount
    ((0, 0) for none)."""
    form, owners = owners_of(scope.people)
    start, end = (period or scope.period).utc_bounds(scope.actor.organization.time_zone)
    rows = scope.session.connection().execute(
        _won_by_owner(form), {"org": scope.actor.organization_id, "start": start, "end": end, **owners}
    )
    won: dict[int, tuple[int, Decimal]] = defaultdict(lambda: (0, Decimal(0)))
    for owner_id, count, amount in rows:
        won[owner_id] = (count, Decimal(amount or 0))
    return won


@cache
def _won_by_owner(form: str) -> Select[Any]:
    """``won_by_owner``'s statement for an owner form (``owners_of``), built once (building it
    cost more than running it): the deals won from ``start`` to ``end``, per owner."""
    return (
        select(Opportunity.owner_id, func.count(), func.sum(Opportunity.amount))
        .where(
            Opportunity.organization_id == bindparam("org"),
            live(Opportunity),
            Opportunity.status == "won",
            owned_by_bound(Opportunity.owner_id, form),
            Opportunity.closed_at >= bindparam("start", type_=UTCDateTime()),
            Opportunity.closed_at < bindparam("end", type_=UTCDateTime()),
        )
        .group_by(Opportunity.owner_id)
    )


@dataclass
class LeaderboardRow:
    rank: int
    owner_id: int
    name: str
    won_amount: Decimal
    won_deals: int
    activities: int | None  # None where not read (``leaderboard``'s ``with_activities``)


def leaderboard(
    scope: ReportScope,
    period: Period | None = None,
    *,
    summary: list[RepActivity] | None = None,
    won: dict[int, tuple[int, Decimal]] | None = None,
    limit: int | None = None,
    with_activities: bool = True,
) -> Shown[LeaderboardRow]:
    """Won revenue and won deals per rep in the scope's period (or ``period``), ranked; activity
    totals beside (None without ``with_activities``: the panels show none, and the rank does not
    depend on them). Equal revenue and deals share a rank. (``summary`` and ``won``: the
    report's, when it has read them.)"""
    people = scope.people
    won = won if won is not None else won_by_owner(scope, period)
    if summary is None and with_activities:
        summary = activity_summary(scope, period)
    totals: dict[int, int | None] = {row.owner_id: row.total for row in summary or []}
    ordered = sorted(people, key=lambda u: (-won[u.id][1], -won[u.id][0], u.name))
    rows: list[LeaderboardRow] = []
    for position, user in enumerate(ordered, start=1):
        tied = rows and (rows[-1].won_amount, rows[-1].won_deals) == (won[user.id][1], won[user.id][0])
        rows.append(
            LeaderboardRow(
                rows[-1].rank if tied else position,
                user.id,
                user.name,
                won[user.id][1],
                won[user.id][0],
                totals.get(user.id, 0) if with_activities else None,
            )
        )
    return Shown.of(rows, limit)
