"""Daily activity rollups: kept in step with every activity write, rebuildable from scratch.

``count_activity`` is called in the same transaction as the write it follows (log: +1, undo:
-1, restore: +1), so a committed activity and its rollup never disagree. ``rebuild_rollups``
recomputes an organization's rows from its activities (after an import, or a change of the
organization's time zone); a test proves both give the same rows.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from typing import Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.models import Activity, ActivityRollup, Organization

Key = tuple[int, date, str, str, str]  # owner, local day, type, direction, outcome


def rollup_key(owner_id: int, occurred_at: datetime, kind: str, direction: str, outcome: str | None, zone: ZoneInfo) -> Key:
    return (owner_id, occurred_at.astimezone(zone).date(), kind, direction, outcome or "")


class RollupCounter:
    """Counts activities into rollup rows in memory: for a rebuild, and for the demo generator
    as it writes its activities."""

    def __init__(self, zone: str) -> None:
        self.zone = ZoneInfo(zone)
        self.counts: Counter[Key] = Counter()
        self.minutes: Counter[Key] = Counter()

    def add(self, owner_id: int, occurred_at: datetime, kind: str, direction: str, outcome: str | None, duration: int | None) -> None:
        key = rollup_key(owner_id, occurred_at, kind, direction, outcome, self.zone)
        self.counts[key] += 1
        self.minutes[key] += duration or 0

    def rows(self, organization_id: int) -> Iterable[dict]:
        for key, count in self.counts.items():
            owner_id, day, kind, direction, outcome = key
            yield {"organization_id": organization_id, "owner_id": owner_id, "day": day, "type": kind, "direction": direction,
                   "outcome": outcome, "count": count, "minutes": self.minutes[key]}


def count_activity(session: Session, organization: Organization, activity: Activity, sign: int) -> None:
    """Add (``sign`` 1) or take away (-1) one activity in its day's rollup row."""
    owner_id, day, kind, direction, outcome = rollup_key(
        activity.owner_id, activity.occurred_at, activity.type, activity.direction, activity.outcome, ZoneInfo(organization.time_zone)
    )
    match = (
        (ActivityRollup.organization_id == organization.id) & (ActivityRollup.owner_id == owner_id) & (ActivityRollup.day == day)
        & (ActivityRollup.type == kind) & (ActivityRollup.direction == direction) & (ActivityRollup.outcome == outcome)
    )
    change = {"count": ActivityRollup.count + sign, "minutes": ActivityRollup.minutes + sign * (activity.duration_minutes or 0)}
    for _attempt in range(3):
        if session.execute(update(ActivityRollup).where(match).values(**change)).rowcount:
            return
        try:
            # Two first activities of a key can race to create its row: the loser updates.
            with session.begin_nested():
                session.execute(insert(ActivityRollup).values(
                    organization_id=organization.id, owner_id=owner_id, day=day, type=kind, direction=direction, outcome=outcome,
                    count=max(sign, 0), minutes=max(sign, 0) * (activity.duration_minutes or 0),
                ))
            return
        except IntegrityError:
            continue
    raise RuntimeError("activity rollup could not be written")


def rebuild_rollups(session: Session, organization: Organization) -> int:
    """Recompute the organization's rollups from its live activities; returns the row count."""
    counter = RollupCounter(organization.time_zone)
    query = select(Activity.owner_id, Activity.occurred_at, Activity.type, Activity.direction, Activity.outcome,
                   Activity.duration_minutes).where(Activity.organization_id == organization.id, Activity.deleted_at.is_(None))
    for row in session.execute(query.execution_options(yield_per=10_000)):
        counter.add(*row)
    session.execute(delete(ActivityRollup).where(ActivityRollup.organization_id == organization.id))
    rows = list(counter.rows(organization.id))
    for start in range(0, len(rows), 5_000):
        session.execute(insert(ActivityRollup), rows[start:start + 5_000])
    return len(rows)


def rollup_snapshot(session: Session, organization_id: int) -> set[tuple]:
    """The organization's rollups as comparable tuples (rows that count nothing left out)."""
    return set(session.execute(
        select(ActivityRollup.owner_id, ActivityRollup.day, ActivityRollup.type, ActivityRollup.direction, ActivityRollup.outcome,
               ActivityRollup.count, ActivityRollup.minutes)
        .where(ActivityRollup.organization_id == organization_id, ActivityRollup.count > 0)
    ).all())
