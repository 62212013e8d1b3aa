"""Activity rollups: kept in step with every activity write, rebuildable from scratch.

Four grains of the same counts: per local day (``activity_rollups``), per local month
(``activity_month_rollups``) and per fiscal year (``activity_year_rollups``) by key, and per
owner and local day whatever the key (``activity_day_totals``, what the drawdown reads). A
report reads whole years or months from the coarse grains and the days at a period's edges
from the first, so a year costs one row per rep and key rather than 365 days' rows.

``count_activity`` is called in the same transaction as the write it follows (log: +1, undo:
-1, restore: +1) and moves every grain, so a committed activity and its rollups never
disagree. ``rebuild_rollups`` recomputes an organization's rows from its activities (after an
import, or a change of the organization's time zone or fiscal year start); a test proves both
give the same rows.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.models import (
    MONTH_COLUMNS,
    WEEKDAY_COLUMNS,
    Activity,
    ActivityDayTotal,
    ActivityMonthRollup,
    ActivityRollup,
    ActivityYearRollup,
    Organization,
    live,
)
from services import latest
from services.deals import recompute_stage_facts
from services.notes import is_flagged
from services.periods import fiscal_year_start
from services.signals import is_attempt, is_contact

Key = tuple[int, date, str, str, str]  # owner, local day, type, direction, outcome
GRAINS: tuple[
    tuple[type[ActivityRollup] | type[ActivityMonthRollup] | type[ActivityYearRollup] | type[ActivityDayTotal], str],
    ...,
] = (
    (ActivityRollup, "day"),
    (ActivityMonthRollup, "month"),
    (ActivityYearRollup, "year"),
    (ActivityDayTotal, "owner_day"),
)
# Each grain's date column: the grain's name, but for the per-owner daily totals.
DATE_COLUMN = {"day": "day", "month": "month", "year": "year", "owner_day": "day"}
COARSE = ("month", "year")  # the grains that count by weekday too


def rollup_key(
    owner_id: int, occurred_at: datetime, kind: str, direction: str, outcome: str | None, zone: ZoneInfo
) -> Key:
    return (owner_id, occurred_at.astimezone(zone).date(), kind, direction, outcome or "")


# The key each grain counts by, beyond owner and date: the fiscal year counts by type only, with
# the attempts and contacts among its activities (what the activity summary reads of the others).
KEYS = {
    "day": ("type", "direction", "outcome"),
    "month": ("type", "direction", "outcome"),
    "year": ("type",),
    "owner_day": (),
}


def _at_grain(key: Key, grain: str, fiscal_month: int) -> tuple:
    owner_id, day, kind, direction, outcome = key
    if grain == "year":
        return (owner_id, fiscal_year_start(day, fiscal_month), kind)
    if grain == "owner_day":
        return (owner_id, day)
    return (owner_id, day.replace(day=1) if grain == "month" else day, kind, direction, outcome)


def _extra_counts(grain: str, key: Key, fiscal_month: int) -> dict[str, int]:
    """Per activity of ``key``: what the year grain counts beside it, the attempts and contacts
    among its activities and its count in the fiscal year's month."""
    if grain != "year":
        return {}
    _, day, kind, direction, outcome = key
    return {
        "attempts": int(is_attempt(kind, direction)),
        "contacts": int(is_contact(kind, direction, outcome or None)),
        MONTH_COLUMNS[(day.month - fiscal_month) % 12]: 1,
    }


# What a rollup counts of an activity, in ``RollupCounter.add``'s order.
COUNTED = (
    Activity.owner_id,
    Activity.occurred_at,
    Activity.type,
    Activity.direction,
    Activity.outcome,
    Activity.duration_minutes,
    Activity.checklist_questions,
    Activity.checklist_answered,
)


class RollupCounter:
    """Counts activities into rollup rows in memory: for a rebuild, and for the demo generator
    as it writes its activities."""

    def __init__(self, zone: str, fiscal_month: int = 1) -> None:
        self.zone = ZoneInfo(zone)
        self.fiscal_month = fiscal_month
        self.counts: Counter[Key] = Counter()
        self.minutes: Counter[Key] = Counter()
        self.flagged: Counter[Key] = Counter()

    def add(
        self,
        owner_id: int,
        occurred_at: datetime,
        kind: str,
        direction: str,
        outcome: str | None,
        duration: int | None,
        questions: int | None = None,
        answered: int | None = None,
    ) -> None:
        key = rollup_key(owner_id, occurred_at, kind, direction, outcome, self.zone)
        self.counts[key] += 1
        self.minutes[key] += duration or 0
        self.flagged[key] += is_flagged(questions, answered)

    def rows(self, organization_id: int, grain: str = "day") -> Iterable[dict]:
        totals: dict[tuple, Counter[str]] = {}
        for key, count in self.counts.items():
            at = _at_grain(key, grain, self.fiscal_month)
            total = totals.setdefault(at, Counter())
            total.update({"count": count, "minutes": self.minutes[key], "flagged": self.flagged[key]})
            total.update({name: n * count for name, n in _extra_counts(grain, key, self.fiscal_month).items()})
            if grain in COARSE:
                total[WEEKDAY_COLUMNS[key[1].weekday()]] += count
        for at, total in totals.items():
            owner_id, when, *rest = at
            row = {
                "organization_id": organization_id,
                "owner_id": owner_id,
                DATE_COLUMN[grain]: when,
                **dict(zip(KEYS[grain], rest)),
                "count": total["count"],
                "minutes": total["minutes"],
                "flagged": total["flagged"],
            }
            if grain in COARSE:
                row.update({column: total[column] for column in WEEKDAY_COLUMNS})
            if grain == "year":
                row.update({column: total[column] for column in ("attempts", "contacts", *MONTH_COLUMNS)})
            yield row


def _counted(grain: str) -> tuple[str, ...]:
    """The columns a grain counts in: the count, minutes and flagged notes, and the coarse
    grains' weekdays, and the year's attempts, contacts and months."""
    columns = ("count", "minutes", "flagged")
    if grain in COARSE:
        columns += tuple(WEEKDAY_COLUMNS)
    if grain == "year":
        columns += ("attempts", "contacts", *MONTH_COLUMNS)
    return columns


def _bump_statement(model: type, grain: str) -> Any:
    """A grain's row moved by an activity, built once: the row by its key, each counted column
    plus its bound amount (0 where the activity does not count)."""
    match = [
        model.organization_id == bindparam("k_org"),
        model.owner_id == bindparam("k_owner"),
        getattr(model, DATE_COLUMN[grain]) == bindparam("k_when"),
    ]
    match += [getattr(model, name) == bindparam(f"k_{name}") for name in KEYS[grain]]
    return (
        update(model)
        .where(*match)
        .values({name: getattr(model, name) + bindparam(f"add_{name}") for name in _counted(grain)})
    )


# Built once: building a statement costs more than running it, and a log moves four grains.
_BUMPS = {grain: _bump_statement(model, grain) for model, grain in GRAINS}


def count_activity(session: Session, organization: Organization, activity: Activity, sign: int) -> None:
    """Add (``sign`` 1) or take away (-1) one activity in its day's, month's and year's rows."""
    key = rollup_key(
        activity.owner_id,
        activity.occurred_at,
        activity.type,
        activity.direction,
        activity.outcome,
        ZoneInfo(organization.time_zone),
    )
    flagged = is_flagged(activity.checklist_questions, activity.checklist_answered)
    for model, grain in GRAINS:
        _bump(session, organization, model, grain, key, sign, activity.duration_minutes or 0, flagged)
    latest.touch(session, activity, sign)  # the deal's and the account's latest activity, kept the same way


def _bump(
    session: Session,
    organization: Organization,
    model: type,
    grain: str,
    day_key: Key,
    sign: int,
    duration: int,
    flagged: int,
) -> None:
    organization_id = organization.id
    owner_id, when, *rest = _at_grain(day_key, grain, organization.fiscal_year_start_month)
    keys = dict(zip(KEYS[grain], rest))
    added = {
        "count": 1,
        "minutes": duration,
        "flagged": flagged,
        **_extra_counts(grain, day_key, organization.fiscal_year_start_month),
    }
    # The coarse grains also count the activity under its local weekday.
    if grain in COARSE:
        added[WEEKDAY_COLUMNS[day_key[1].weekday()]] = 1
    bump = {
        "k_org": organization_id,
        "k_owner": owner_id,
        "k_when": when,
        **{f"k_{name}": value for name, value in keys.items()},
        **{f"add_{name}": sign * added.get(name, 0) for name in _counted(grain)},
    }
    for _attempt in range(3):
        if session.connection().execute(_BUMPS[grain], bump).rowcount:
            return
        try:
            # Two first activities of a key can race to create its row: the loser updates.
            with session.begin_nested():
                session.execute(
                    insert(model).values(
                        organization_id=organization_id,
                        owner_id=owner_id,
                        **{DATE_COLUMN[grain]: when},
                        **keys,
                        **{name: max(sign, 0) * n for name, n in added.items()},
                    )
                )
            return
        except IntegrityError:
            continue
    raise RuntimeError("activity rollup could not be written")


def add_counted(session: Session, organization: Organization, counter: RollupCounter, sign: int = 1) -> int:
    """Add what ``counter`` counted (an import's activities) to the organization's rollups, or
    take it away (``sign`` -1: an undone import), in bulk: the rows of the owners and dates it
    counted are read, summed with its counts and written back. What it costs grows with what was
    counted, not with the store (``rebuild_rollups`` reads every activity of the owners).
    Returns the number of rows written."""
    written = 0
    for model, grain in GRAINS:
        adding = {_row_key(row, grain): row for row in counter.rows(organization.id, grain)}
        if not adding:
            continue
        counted = _counted(grain)
        when = getattr(model, DATE_COLUMN[grain])
        keys = [getattr(model, name) for name in KEYS[grain]]
        dates = [key[1] for key in adding]
        merged: dict[tuple, dict] = {}
        doomed: list[int] = []
        for chunk in _chunks(sorted({key[0] for key in adding})):
            held = session.execute(
                select(model.id, model.owner_id, when, *keys, *(getattr(model, name) for name in counted)).where(
                    model.organization_id == organization.id,
                    model.owner_id.in_(chunk),
                    when >= min(dates),
                    when <= max(dates),
                )
            )
            for row in held:
                key = tuple(row[1 : 3 + len(keys)])
                if key in adding:
                    doomed.append(row[0])
                    merged[key] = dict(zip(counted, row[3 + len(keys) :]))
        rows = []
        for key, row in adding.items():
            before = merged.get(key, {})
            total = {name: (before.get(name) or 0) + sign * (row.get(name) or 0) for name in counted}
            if total["count"] > 0:  # a key left counting nothing has no row, as a rebuild leaves none
                rows.append({**row, **total})
        for chunk in _chunks(doomed):
            session.execute(delete(model).where(model.id.in_(chunk)))
        for start in range(0, len(rows), 5_000):
            session.execute(insert(model), rows[start : start + 5_000])
        written += len(rows)
    return written


def _row_key(row: dict, grain: str) -> tuple:
    return (row["owner_id"], row[DATE_COLUMN[grain]], *(row[name] for name in KEYS[grain]))


def rebuild_rollups(session: Session, organization: Organization) -> int:
    """Recompute the organization's rollups, every grain, from its live activities, and its deals'
    and accounts' kept facts; returns the number of daily rows."""
    latest.recompute(session, organization.id)
    recompute_stage_facts(session, organization.id)
    counter = RollupCounter(organization.time_zone, organization.fiscal_year_start_month)
    query = select(*COUNTED).where(Activity.organization_id == organization.id, live(Activity))
    for row in session.execute(query.execution_options(yield_per=10_000)):
        counter.add(*row)
    daily = 0
    for model, grain in GRAINS:
        session.execute(delete(model).where(model.organization_id == organization.id))
        rows = list(counter.rows(organization.id, grain))
        for start in range(0, len(rows), 5_000):
            session.execute(insert(model), rows[start : start + 5_000])
        daily = daily or len(rows)
    return daily


def _chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    return [ids[start : start + size] for start in range(0, len(ids), size)]
