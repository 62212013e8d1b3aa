"""Quotas as an admin keeps them: a fiscal year's grid of monthly targets, per rep and per team,
for one metric at a time (a count of one activity type, won revenue, won deals); and the same
targets imported from a CSV. Every change is audited; a refused cell or row changes nothing.

The reports read the targets as they always did (``services.reports``): a month's target whose
month only partly overlaps a report's period counts pro rata by days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.access import require_role
from services.audit import record_event
from services.errors import DomainError
from services.models import ACTIVITY_TYPES, Quota, QuotaMetric, Team, User
from services.numbers import AmountError, parse_amount
from services.setup.tables import read_table

METRICS: dict[str, str] = {f"activities:{kind}": f"{kind.capitalize()}s" for kind in ACTIVITY_TYPES} | {
    QuotaMetric.WON_REVENUE.value: "Won revenue",
    QuotaMetric.WON_DEALS.value: "Won deals",
}
MAX_TARGET = Decimal(10) ** 12


def fiscal_months(year: int, first_month: int) -> list[date]:
    """The first days of the 12 months of the fiscal year that starts in ``year``."""
    return [date(year + (first_month - 1 + i) // 12, (first_month - 1 + i) % 12 + 1, 1) for i in range(12)]


def _metric(key: Any) -> tuple[str, str | None]:
    if key not in METRICS:
        raise DomainError("Choose a metric.", {"metric": ["Unknown metric."]})
    metric, _, kind = str(key).partition(":")
    return metric, kind or None


@dataclass
class GridRow:
    kind: str  # "rep" or "team"
    id: int
    name: str
    targets: list[Decimal | None] = field(default_factory=list)


@dataclass
class Grid:
    year: int
    metric: str
    months: list[date]
    rows: list[GridRow]


def _targets(session: Session, org_id: int, months: list[date], metric: str, kind: str | None) -> dict[tuple, Quota]:
    quotas = session.scalars(
        select(Quota).where(
            Quota.organization_id == org_id,
            Quota.period == "month",
            Quota.metric == metric,
            Quota.activity_type.is_(None) if kind is None else Quota.activity_type == kind,
            Quota.period_start >= months[0],
            Quota.period_start <= months[-1],
        )
    )
    return {("rep" if q.user_id else "team", q.user_id or q.team_id, q.period_start): q for q in quotas}


def _rows(session: Session, org_id: int) -> list[GridRow]:
    people = session.execute(
        select(User.id, User.name)
        .where(User.organization_id == org_id, User.is_active, User.role.in_(("rep", "manager")))
        .order_by(User.name)
    ).all()
    teams = session.execute(select(Team.id, Team.name).where(Team.organization_id == org_id).order_by(Team.name)).all()
    return [GridRow("team", i, n) for i, n in teams] + [GridRow("rep", i, n) for i, n in people]


def quota_grid(session: Session, actor: User, year: int, metric_key: str) -> Grid:
    require_role(actor, "admin")
    metric, kind = _metric(metric_key)
    months = fiscal_months(year, actor.organization.fiscal_year_start_month)
    held = _targets(session, actor.organization_id, months, metric, kind)
    rows = _rows(session, actor.organization_id)
    for row in rows:
        row.targets = [
            held[(row.kind, row.id, month)].target if (row.kind, row.id, month) in held else None for month in months
        ]
    return Grid(year, metric_key, months, rows)


def _target(value: str, metric: str, locale: str) -> Decimal | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        number = parse_amount(value, locale)
    except AmountError:
        raise ValueError("not a number") from None
    if number < 0 or number >= MAX_TARGET:
        raise ValueError("out of range")
    if metric != QuotaMetric.WON_REVENUE and number != number.to_integral_value():
        raise ValueError("a count is a whole number")
    return number


def _apply(
    session: Session, actor: User, metric: str, kind: str | None, changes: dict[tuple[str, int, date], Decimal | None]
) -> int:
    """Write the targets (None removes one); returns how many changed, each audited."""
    if not changes:
        return 0
    months = sorted({month for _, _, month in changes})
    held = _targets(session, actor.organization_id, months, metric, kind)
    changed = 0
    for (who, ident, month), target in changes.items():
        quota = held.get((who, ident, month))
        before = str(quota.target) if quota is not None else None
        if quota is not None and target is None:
            session.delete(quota)
        elif quota is not None:
            if quota.target == target:
                continue
            quota.target = target
        elif target is not None:
            quota = Quota(
                organization_id=actor.organization_id,
                user_id=ident if who == "rep" else None,
                team_id=ident if who == "team" else None,
                period="month",
                period_start=month,
                metric=metric,
                activity_type=kind,
                target=target,
            )
            session.add(quota)
            session.flush()
        else:
            continue
        changed += 1
        record_event(
            session,
            actor,
            "quota",
            quota,
            before={"target": before},
            after={"target": str(target) if target is not None else None, "month": month.isoformat(), who: ident},
        )
    return changed


def save_grid(session: Session, actor: User, year: int, metric_key: str, cells: Mapping[str, str]) -> int:
    """The grid's cells as the page posts them (``t-<rep|team>-<id>-<month index>``: a target, or
    blank for none). Every cell is checked before any is written."""
    require_role(actor, "admin")
    metric, kind = _metric(metric_key)
    months = fiscal_months(year, actor.organization.fiscal_year_start_month)
    known = {(row.kind, row.id) for row in _rows(session, actor.organization_id)}
    locale = actor.organization.setting("locale")
    changes: dict[tuple[str, int, date], Decimal | None] = {}
    errors: dict[str, list[str]] = {}
    for name, value in cells.items():
        parts = name.split("-")
        if len(parts) != 4 or parts[0] != "t" or not parts[2].isdigit() or not parts[3].isdigit():
            continue
        who, ident, index = parts[1], int(parts[2]), int(parts[3])
        if (who, ident) not in known or not 0 <= index < 12:
            errors[name] = ["Not a rep or team of the organization."]
            continue
        try:
            changes[(who, ident, months[index])] = _target(value, metric, locale)
        except ValueError:
            errors[name] = ["Enter a number of 0 or more (a count is a whole number)."]
    if errors:
        raise DomainError("Some targets are not numbers; nothing was saved.", errors)
    current = quota_grid(session, actor, year, metric_key)
    held = {
        (row.kind, row.id, month): target for row in current.rows for month, target in zip(current.months, row.targets)
    }
    return _apply(
        session, actor, metric, kind, {key: value for key, value in changes.items() if held.get(key) != value}
    )


CSV_COLUMNS = ("for", "who", "month", "metric", "target")


def import_quotas(session: Session, actor: User, data: bytes) -> int:
    """Targets from a CSV with the columns ``for`` (rep or team), ``who`` (a rep's e-mail or a
    team's name), ``month`` (YYYY-MM), ``metric`` (as the grid names it: ``activities:call``,
    ``won_revenue``…) and ``target``. All rows or none: a refusal names its line."""
    require_role(actor, "admin")
    table = read_table(data, "quotas.csv")
    headers = [h.strip().lower() for h in table.headers]
    if set(CSV_COLUMNS) - set(headers):
        raise DomainError(f"The CSV needs the columns {', '.join(CSV_COLUMNS)}.", {"file": ["Columns missing."]})
    org_id = actor.organization_id
    people = dict(session.execute(select(User.email, User.id).where(User.organization_id == org_id)).all())
    teams = {n.lower(): i for i, n in session.execute(select(Team.id, Team.name).where(Team.organization_id == org_id))}
    locale = actor.organization.setting("locale")
    by_metric: dict[tuple[str, str | None], dict] = {}
    errors: dict[str, list[str]] = {}
    for line, cells in enumerate(table.rows, start=2):
        row = dict(zip(headers, (cell.strip() for cell in cells)))
        try:
            who = row["for"].lower()
            if who not in ("rep", "team"):
                raise ValueError("“for” is rep or team")
            ident = people.get(row["who"].lower()) if who == "rep" else teams.get(row["who"].lower())
            if ident is None:
                raise ValueError(f"no {who} {row['who']!r} in the organization")
            try:
                year, month = (int(part) for part in row["month"].split("-"))
                start = date(year, month, 1)
            except ValueError:
                raise ValueError("the month is YYYY-MM") from None
            if not 1900 <= start.year < 2200:
                raise ValueError("the month is out of range")
            metric, kind = _metric(row["metric"])
            by_metric.setdefault((metric, kind), {})[(who, ident, start)] = _target(row["target"], metric, locale)
        except (ValueError, DomainError) as error:
            message = error.message if isinstance(error, DomainError) else str(error)
            errors[f"line {line}"] = [message]
        if len(errors) >= 20:
            break
    if errors:
        first = next(iter(errors.items()))
        raise DomainError(f"Nothing imported: {first[0]}: {first[1][0]}.", errors)
    return sum(_apply(session, actor, metric, kind, changes) for (metric, kind), changes in by_metric.items())
