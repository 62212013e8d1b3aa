"""Activity figures: counts and time by rep and type, the weekday pattern, drawdown, trends.
They read the rollups (a fiscal year yearly, whole months monthly, edge days daily) and the
activities themselves only for a to-date period's partial last day."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo
from decimal import Decimal

from sqlalchemy import ColumnElement, Integer, bindparam, case, func, literal, or_, select, true, union_all

from services.models import (
    ACTIVITY_TYPES,
    MONTH_COLUMNS,
    WEEKDAY_COLUMNS,
    Activity,
    ActivityDayTotal,
    ActivityMonthRollup,
    ActivityRollup,
    ActivityYearRollup,
    Opportunity,
    User,
    live,
)
from services.periods import Period, add_months, fiscal_year_start, local_midnight
from services.signals import is_attempt_of, is_inbound_interaction
from services.types import UTCDateTime, one_of
from services.shown import Shown
from services.reports.scope import ReportScope, _partial_day, owned_by, owned_by_bound, owners_of


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


def _month_split(start: date, end: date) -> tuple[tuple[date, date] | None, list[tuple[date, date]]]:
    """``[start, end)`` as the whole months inside it (first days of the first month and of
    the month after the last) and the day ranges left at its edges."""
    first = start if start.day == 1 else add_months(date(start.year, start.month, 1), 1)
    last = date(end.year, end.month, 1)
    if first >= last:
        return None, [(start, end)] if start < end else []
    edges = [(a, b) for a, b in ((start, first), (last, end)) if a < b]
    return (first, last), edges


Piece = tuple[Any, list[tuple[date, date]], int]  # (rollup model, date ranges, +1 or -1)
_WHEN = {
    ActivityRollup: ActivityRollup.day,
    ActivityMonthRollup: ActivityMonthRollup.month,
    ActivityYearRollup: ActivityYearRollup.year,
}


def _direct(start: date, end: date, sign: int = 1) -> list[Piece]:
    months, days = _month_split(start, end)
    return [
        (model, ranges, sign)
        for model, ranges in ((ActivityMonthRollup, [months] if months else []), (ActivityRollup, days))
        if ranges
    ]


def _rollup_ranges(period: Period, fiscal_month: int) -> list[Piece]:
    """Which rollup rows serve a period's whole days, each with the sign it counts with:
    whole months from the monthly grain and the days at the edges from the daily one; or, for
    a period from the start of a fiscal year, that year's row less the months and days of the
    year after the period, when that is fewer rows to read. A year to date is then its year
    less the days still to come, which hold next to nothing. At most two ranges a piece."""
    start, end = period.start, period.whole_days_end
    direct = _direct(start, end)
    year_end = add_months(start, 12)
    if start >= end or fiscal_year_start(start, fiscal_month) != start or end > year_end:
        return direct
    rest = _direct(end, year_end, -1)
    if 1 + _rows_per_rep_and_key(rest) >= _rows_per_rep_and_key(direct):
        return direct
    return [(ActivityYearRollup, [(start, start + timedelta(days=1))], 1), *rest]


def _rows_per_rep_and_key(pieces: list[Piece]) -> int:
    """How many rollup rows the pieces read for one rep and key, at most: a month's or a day's."""
    return sum(
        _months_between(a, b) if model is ActivityMonthRollup else (b - a).days
        for model, ranges, _ in pieces
        for a, b in ranges
    )


def _months_between(start: date, end: date) -> int:
    return (end.year - start.year) * 12 + end.month - start.month


def _rollup_grains(period: Period, fiscal_month: int) -> list[tuple[Any, ColumnElement[bool], int]]:
    """The same as conditions: (model, condition on its date, sign)."""
    return [
        (model, or_(*((_WHEN[model] >= a) & (_WHEN[model] < b) for a, b in ranges)), sign)
        for model, ranges, sign in _rollup_ranges(period, fiscal_month)
    ]


def _summary_statement(model: Any, by_owner: bool = True) -> Any:
    """Per rep, one row: activities and minutes of each type side by side, attempts and
    contacts, so that a year of 360 reps comes back in 360 rows. The year grain counts
    attempts and contacts as they are written; the finer grains have them worked out here (the
    rules of ``services.signals`` in SQL)."""
    when = _WHEN[model]
    if model is ActivityYearRollup:
        attempts, contacts = func.sum(model.attempts), func.sum(model.contacts)
    else:
        attempts = func.sum(case((is_attempt_of(model), model.count), else_=0))
        contacts = func.sum(case((is_inbound_interaction(model), model.count), else_=0))
    owners = one_of(model.owner_id, bindparam("owners")) if by_owner else true()
    by_type = [
        func.sum(case((model.type == kind, getattr(model, column)), else_=0))
        for column in ("count", "minutes")
        for kind in ACTIVITY_TYPES
    ]
    return (
        select(model.owner_id, attempts, contacts, *by_type)
        .where(
            model.organization_id == bindparam("org"),
            owners,
            or_(*((when >= bindparam(f"start{i}")) & (when < bindparam(f"end{i}")) for i in range(2))),
        )
        .group_by(model.owner_id)
    )


# The summary's statements, built once, with its date ranges as parameters (two at most: an
# unused one is empty): for a few reps, their rows; for many, the organization's, the other
# owners' dropped as they are read (one walk of the date index, not a probe per rep).
_SUMMARY = {(model, by_owner): _summary_statement(model, by_owner) for model in _WHEN for by_owner in (True, False)}
FEW_REPS = 60


def _range_parameters(ranges: list[tuple[date, date]]) -> dict[str, date]:
    padded = ranges + [(ranges[0][0], ranges[0][0])] * (2 - len(ranges))
    return {
        key: value for i, (start, end) in enumerate(padded) for key, value in ((f"start{i}", start), (f"end{i}", end))
    }


def activity_summary(scope: ReportScope, period: Period | None = None) -> list[RepActivity]:
    """Activity counts and time by rep × type, attempts, contacts and connect rate, for the
    scope's period or ``period`` (its comparison, a week before)."""
    session, actor, period = scope.session, scope.actor, period or scope.period
    reps = {user.id: RepActivity(user.id, user.name) for user in scope.people}
    # From the rollups, not the activities: whole months from the monthly grain, the days at
    # the edges from the daily one, so that cost follows reps × (months + edge days). A to-date
    # period's last day is partial, and read from the activities themselves.
    few = len(reps) <= FEW_REPS
    connection = session.connection()  # plain rows: no ORM result machinery for thousands of them
    results = [
        (
            connection.execute(
                _SUMMARY[(model, few)],
                {"org": actor.organization_id, "owners": list(reps), **_range_parameters(ranges)},
            ).all(),
            sign,
        )
        for model, ranges, sign in _rollup_ranges(period, actor.organization.fiscal_year_start_month)
    ]
    if (partial := _partial_day(actor, period, reps)) is not None:
        results.append(
            (
                session.connection()
                .execute(
                    select(
                        Activity.owner_id,
                        func.sum(case((is_attempt_of(), 1), else_=0)),
                        func.sum(case((is_inbound_interaction(), 1), else_=0)),
                        *(
                            func.sum(case((Activity.type == kind, value), else_=0))
                            for value in (1, func.coalesce(Activity.duration_minutes, 0))
                            for kind in ACTIVITY_TYPES
                        ),
                    )
                    .where(partial)
                    .group_by(Activity.owner_id)
                )
                .all(),
                1,
            )
        )
    kinds = len(ACTIVITY_TYPES)
    for result, sign in results:
        for owner_id, attempts, contacts, *by_type in result:
            if (rep := reps.get(owner_id)) is None:
                continue
            rep.attempts += sign * (attempts or 0)
            rep.contacts += sign * (contacts or 0)
            for i, kind in enumerate(ACTIVITY_TYPES):
                if count := by_type[i]:
                    rep.counts[kind] = rep.counts.get(kind, 0) + sign * count
                    rep.minutes[kind] = rep.minutes.get(kind, 0) + sign * (by_type[kinds + i] or 0)
    for rep in reps.values():  # a type the subtracted days took back to nothing is not shown
        for kind in [k for k, n in rep.counts.items() if n == 0 and not rep.minutes.get(k)]:
            del rep.counts[kind]
            rep.minutes.pop(kind, None)
    return list(reps.values())


@dataclass
class Drawdown:
    owner_id: int
    name: str
    recent_per_day: float  # activities per working day over the last 7 days (7 × 24 hours up to now)
    baseline_per_day: float  # the same over the 28 days before those


RECENT = timedelta(days=7)


BASELINE = timedelta(days=28)


WORKING_DAYS = {RECENT: 5, BASELINE: 20}
# Per rep, activities in the last 7 × 24 hours and in the 35 × 24 hours up to now: the local
# days wholly inside from the per-owner daily totals (a row per rep and day), and the three
# days the window's start, its split and now fall in from the activities themselves. Built
# once; bind "org", "owners", the whole days ("first_day", "split_day", "today"), the three
# partial days' spans ("from0" to "until2") and "split".
_DRAWDOWN_DAYS = (
    select(
        ActivityDayTotal.owner_id,
        func.sum(case((ActivityDayTotal.day > bindparam("split_day"), ActivityDayTotal.count), else_=0)),
        func.sum(ActivityDayTotal.count),
    )
    .where(
        ActivityDayTotal.organization_id == bindparam("org"),
        one_of(ActivityDayTotal.owner_id, bindparam("owners")),
        ActivityDayTotal.day >= bindparam("first_day"),
        ActivityDayTotal.day < bindparam("today"),
        ActivityDayTotal.day != bindparam("split_day"),
    )
    .group_by(ActivityDayTotal.owner_id)
)
_EDGES = union_all(
    *(
        select(
            Activity.owner_id,
            case((Activity.occurred_at >= bindparam("split", type_=UTCDateTime()), 1), else_=0).label("recent"),
        ).where(
            Activity.organization_id == bindparam("org"),
            live(Activity),
            one_of(Activity.owner_id, bindparam("owners")),
            Activity.occurred_at >= bindparam(f"from{i}", type_=UTCDateTime()),
            Activity.occurred_at < bindparam(f"until{i}", type_=UTCDateTime()),
        )
        for i in range(3)
    )
).subquery("edges")
_DRAWDOWN_EDGES = select(_EDGES.c.owner_id, func.sum(_EDGES.c.recent), func.count()).group_by(_EDGES.c.owner_id)


def _drawdown_parameters(actor: User, now: datetime) -> dict[str, Any]:
    name = actor.organization.time_zone
    zone = ZoneInfo(name)
    start, split = now - RECENT - BASELINE, now - RECENT
    first_day, split_day, today = (
        start.astimezone(zone).date() + timedelta(days=1),
        split.astimezone(zone).date(),
        now.astimezone(zone).date(),
    )
    spans = [
        (start, local_midnight(first_day, name)),
        (local_midnight(split_day, name), local_midnight(split_day + timedelta(days=1), name)),
        (local_midnight(today, name), now),
    ]
    return {
        "org": actor.organization_id,
        "first_day": first_day,
        "split_day": split_day,
        "today": today,
        "split": split,
        **{f"from{i}": a for i, (a, _) in enumerate(spans)},
        **{f"until{i}": b for i, (_, b) in enumerate(spans)},
    }


def drawdown_alerts(scope: ReportScope, limit: int | None = None) -> Shown[Drawdown]:
    """Reps whose activities per working day over the last 7 days (the 7 × 24 hours up to the
    scope's ``now``, so that a day only hours old is not counted as a whole one) fell below the
    organization's threshold (default 60 %) of their own rate over the 28 days before; the
    steepest falls first. A deactivated rep is not slipping: they left (their past work still counts)."""
    session, actor = scope.session, scope.actor
    threshold = float(actor.organization.setting("drawdown_threshold"))
    people = {u.id: u.name for u in scope.people if u.active}
    parameters = _drawdown_parameters(actor, scope.now) | {"owners": list(people)}
    counted: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    connection = session.connection()
    for statement in (_DRAWDOWN_DAYS, _DRAWDOWN_EDGES):
        for owner_id, in_recent, in_both in connection.execute(statement, parameters):
            counted[owner_id][0] += int(in_recent or 0)
            counted[owner_id][1] += int(in_both or 0)
    alerts = []
    for owner_id, (in_recent, in_both) in counted.items():
        recent_rate = in_recent / WORKING_DAYS[RECENT]
        baseline_rate = (in_both - in_recent) / WORKING_DAYS[BASELINE]
        if baseline_rate > 0 and recent_rate < threshold * baseline_rate:
            alerts.append(Drawdown(owner_id, people[owner_id], round(recent_rate, 2), round(baseline_rate, 2)))
    # The steepest fall first (the lowest share of their own usual rate), a tie by name.
    return Shown.of(sorted(alerts, key=lambda d: (d.recent_per_day / d.baseline_per_day, d.name)), limit)


def weekday_pattern(scope: ReportScope) -> dict[int, list[int]]:
    """Activity counts by local weekday (Monday first), per rep."""
    session, actor, period = scope.session, scope.actor, scope.period
    people = [u.id for u in scope.people]
    pattern = {owner_id: [0] * 7 for owner_id in people}
    # Whole months from the monthly rollups' weekday counts, edge days from the daily rollups.
    rows: list[tuple[Any, int]] = []
    for model, within, sign in _rollup_grains(period, actor.organization.fiscal_year_start_month):
        if model is ActivityRollup:
            rows += [
                (row, sign)
                for row in session.connection().execute(
                    select(model.owner_id, model.day, func.sum(model.count))
                    .where(model.organization_id == actor.organization_id, one_of(model.owner_id, people), within)
                    .group_by(model.owner_id, model.day)
                )
            ]
            continue
        # The coarse grains count by weekday themselves.
        for owner_id, *by_weekday in session.connection().execute(
            select(model.owner_id, *(func.sum(getattr(model, column)) for column in WEEKDAY_COLUMNS))
            .where(model.organization_id == actor.organization_id, one_of(model.owner_id, people), within)
            .group_by(model.owner_id)
        ):
            for weekday, count in enumerate(by_weekday):
                pattern[owner_id][weekday] += sign * int(count or 0)
    if (partial := _partial_day(actor, period, people)) is not None and period.until is not None:
        rows += [
            ((owner_id, period.until.date(), count), 1)
            for owner_id, count in session.connection().execute(
                select(Activity.owner_id, func.count()).where(partial).group_by(Activity.owner_id)
            )
        ]
    for (owner_id, day, count), sign in rows:
        pattern[owner_id][day.weekday()] += sign * int(count or 0)
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


def monthly_trends(scope: ReportScope) -> list[MonthPoint]:
    """The scope's last ``months`` calendar months (12 or 24, as ``report_scope`` checks), this one
    included: won amount and deals, win rate, activities."""
    session, actor, today, months, people = scope.session, scope.actor, scope.today, scope.months, scope.people
    first = add_months(date(today.year, today.month, 1), -(months - 1))
    points = {add_months(first, n): MonthPoint(add_months(first, n)) for n in range(months)}
    span = Period(first, add_months(first, months))
    # Activities by month from the fiscal years' rows, which count each of their months: one
    # row per rep and type and year (two or three years), not one per rep, key and month.
    fiscal_month = actor.organization.fiscal_year_start_month
    for year, *by_month in session.connection().execute(
        select(ActivityYearRollup.year, *(func.sum(getattr(ActivityYearRollup, column)) for column in MONTH_COLUMNS))
        .where(
            ActivityYearRollup.organization_id == actor.organization_id,
            owned_by(ActivityYearRollup.owner_id, people),
            ActivityYearRollup.year >= fiscal_year_start(span.start, fiscal_month),
            ActivityYearRollup.year < span.end,
        )
        .group_by(ActivityYearRollup.year)
    ):
        for n, count in enumerate(by_month):
            if (point := points.get(add_months(year, n))) is not None:
                point.activities += int(count or 0)
    # Deals closed, by local month, counted in the database: each month's bounds are the UTC
    # instants of its local midnights, so the bucket is exact across DST changes.
    starts = list(points)
    bounds = [Period(month, add_months(month, 1)).utc_bounds(actor.organization.time_zone) for month in starts]
    form, owners = owners_of(people)
    for index, status, count, amount in session.connection().execute(
        _closed_by_month(months, form, session.get_bind().dialect.name),
        {
            "org": actor.organization_id,
            **owners,
            **{f"from{i}": start for i, (start, _) in enumerate(bounds)},
            "until": bounds[-1][1],
        },
    ):
        point = points[starts[index]]
        if status == "won":
            point.won_deals += count
            point.won_amount += Decimal(amount or 0)
        else:
            point.lost_deals += count
    return list(points.values())


@cache
def _closed_by_month(months: int, form: str, dialect: str) -> Any:
    """Won and lost deals' count and amount for each of ``months`` months (from "from<i>" to the
    next month's "from", the last to "until"), for an owner form (``owners_of``);
    built once per length, form and back end (building it per call cost more than running it).
    On PostgreSQL one walk of the closed-deal index, each deal put in its month by a CASE of the
    bounds (as cheap as no CASE at all there; ``width_bucket`` and a scan per month were
    dearer); on SQLite a range of the index per month, which halves the CASE's 6.1 ms for a
    year of an organization."""
    bound = [bindparam(f"from{i}", type_=UTCDateTime()) for i in range(months)] + [
        bindparam("until", type_=UTCDateTime())
    ]
    closed = (
        (Opportunity.organization_id == bindparam("org"))
        & live(Opportunity)
        & Opportunity.status.in_(("won", "lost"))
        & owned_by_bound(Opportunity.owner_id, form)
    )
    if dialect == "postgresql":
        month = case(*((Opportunity.closed_at < until, i) for i, until in enumerate(bound[1:])))
        return (
            select(month, Opportunity.status, func.count(), func.sum(Opportunity.amount))
            .where(closed, Opportunity.closed_at >= bound[0], Opportunity.closed_at < bound[-1])
            .group_by(month, Opportunity.status)
        )
    return union_all(
        *(
            select(literal(i, Integer()), Opportunity.status, func.count(), func.sum(Opportunity.amount))
            .where(closed, Opportunity.closed_at >= bound[i], Opportunity.closed_at < bound[i + 1])
            .group_by(Opportunity.status)
            for i in range(months)
        )
    )
