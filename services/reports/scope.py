"""Who a report is about: the people an actor may see, the period's bounds in SQL, and the
scope a report resolves once per request."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Iterable
from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from services.access import require_role
from services.errors import Forbidden
from services.models import Activity, Opportunity, Team, User
from services.periods import Period, comparison_for
from services.users import PEOPLE, Person



_MEMBERS = PEOPLE.where(User.role.in_(("rep", "manager"))).order_by(User.name)


def team_members(session: Session, actor: User, team_id: int | None = None, rep_id: int | None = None) -> list[Person]:
    """The people whose figures the actor may see: a manager's team; for an admin, the team
    asked for or everyone; narrowed to one rep of those when ``rep_id`` is given."""
    require_role(actor, "manager", "admin")
    if actor.role == "manager":
        if team_id not in (None, actor.team_id):
            raise Forbidden("Managers see their own team's figures.")
        team_id = actor.team_id
    query = _MEMBERS
    if team_id is not None:
        query = query.where(User.team_id == team_id)
    if rep_id is not None:
        query = query.where(User.id == rep_id)
    return [Person(*row) for row in session.connection().execute(query, {"org": actor.organization_id})]


def _people(session: Session, actor: User, team_id: int | None, rep_id: int | None, people: list[Person] | None) -> list[Person]:
    """The people a figure covers: resolved once by the report's scope, or here for a caller
    that asks for one figure alone."""
    return people if people is not None else team_members(session, actor, team_id, rep_id)


def _in_period(column: ColumnElement, actor: User, period: Period) -> ColumnElement[bool]:
    start, end = period.utc_bounds(actor.organization.time_zone)
    return (column >= start) & (column < end)


def _partial_day(actor: User, period: Period, owners: Iterable[int]) -> ColumnElement[bool] | None:
    """The live activities of these owners on a to-date period's last day, from its local
    midnight to the period's end: the part of the period the rollups cannot serve. None for a
    period of whole days."""
    if period.until is None:
        return None
    zone = ZoneInfo(actor.organization.time_zone)
    midnight = datetime.combine(period.until.date(), time(), tzinfo=zone).astimezone(timezone.utc)
    return (
        (Activity.organization_id == actor.organization_id) & Activity.deleted_at.is_(None) & Activity.owner_id.in_(list(owners))
        & (Activity.occurred_at >= midnight) & (Activity.occurred_at < period.until.replace(tzinfo=zone).astimezone(timezone.utc))
    )


def _closed_in(actor: User, period: Period, owners: Iterable[int], statuses: tuple[str, ...] = ("won", "lost")) -> ColumnElement[bool]:
    """Deals of these owners closed (``closed_at``) in the period with one of these statuses."""
    return (
        (Opportunity.organization_id == actor.organization_id)
        & Opportunity.deleted_at.is_(None)
        & Opportunity.status.in_(statuses)
        & Opportunity.owner_id.in_(list(owners))
        & _in_period(Opportunity.closed_at, actor, period)
    )


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
    every_rep: bool = False  # show every rep's row however many (the page shows the most active of many)

    @cached_property
    def people(self) -> list[Person]:
        return team_members(self.session, self.actor, self.team_id, self.rep_id)

    @cached_property
    def comparison(self) -> Period:
        return comparison_for(self.period, self.year_over_year)


def visible_teams(session: Session, actor: User) -> list[Team]:
    """The teams the actor may pick on the dashboard: an admin's all, a manager's own."""
    require_role(actor, "manager", "admin")
    query = select(Team).where(Team.organization_id == actor.organization_id).order_by(Team.name)
    if actor.role == "manager":
        query = query.where(Team.id == actor.team_id)
    return list(session.scalars(query))
