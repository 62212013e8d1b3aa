"""Who a report is about: the people an actor may see, the period's bounds in SQL, and the
scope a report resolves once per request."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Iterable
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, bindparam, select, true
from sqlalchemy.orm import Session

from services.access import require_role
from services.errors import DomainError, Forbidden
from services.models import Activity, Opportunity, Team, User, live
from services.periods import Period, comparison_for, local_midnight, local_today, period_for
from services.types import one_of
from services.setup.teams import members_on, moved_since
from services.users import PEOPLE, Person, told_apart


MEMBER_ROLES = ("rep", "manager")  # whose figures the reports show
_MEMBERS = PEOPLE.where(User.role.in_(MEMBER_ROLES)).order_by(User.name)


class People(list):  # list[Person]
    """The people a figure covers, in name order. When they are every rep and manager of the
    organization (an admin's whole-organization view), ``others`` are the ids of its users who
    are not (its admins, a few): a statement that walks the organization by date then leaves
    those out (``owned_by``) rather than naming hundreds of owners."""

    others: list[int] | None = None


_NOT_MEMBERS = select(User.id).where(User.organization_id == bindparam("org"), User.role.not_in(MEMBER_ROLES))


def team_members(
    session: Session, actor: User, team_id: int | None = None, rep_id: int | None = None, on: date | None = None
) -> People:
    """The people whose figures the actor may see: a manager's team; for an admin, the team
    asked for or everyone; narrowed to one rep of those when ``rep_id`` is given. A team's
    people are its members ``on`` a day (a period's last day): someone who moved team after it
    counts where they were then (``services.setup.teams``)."""
    require_role(actor, "manager", "admin")
    if actor.role == "manager":
        if team_id not in (None, actor.team_id):
            raise Forbidden("Managers see their own team's figures.")
        team_id = actor.team_id
    dated = team_id is not None and on is not None and moved_since(session, actor.organization_id, on)
    query = _MEMBERS
    if team_id is not None and not dated:
        query = query.where(User.team_id == team_id)
    if rep_id is not None:
        query = query.where(User.id == rep_id)
    connection = session.connection()
    found = [Person(*row) for row in connection.execute(query, {"org": actor.organization_id})]
    if dated:
        members = members_on(session, actor.organization_id, team_id, on, found)
        found = [person for person in found if person.id in members]
    people = People(told_apart(found))
    if team_id is None and rep_id is None:
        people.others = list(connection.scalars(_NOT_MEMBERS, {"org": actor.organization_id}))
    return people


def owned_by(column: ColumnElement, people: Iterable[Person] | Iterable[int]) -> ColumnElement[bool]:
    """``column`` (an owner's id) is one of ``people`` (``Person`` rows or ids): for every member
    of the organization, as not one of the few others (``People.others``); else by their ids.
    Only for statements that find their rows by organization and date, not by owner."""
    form, values = owners_of(people)
    if form == "all":
        return true()
    return column.not_in(values["others"]) if form == "others" else one_of(column, values["owners"])


def owners_of(people: Iterable[Person] | Iterable[int]) -> tuple[str, dict[str, list[int]]]:
    """How a statement names these owners (``owned_by``, ``owned_by_bound``): its form ("all"
    members, none of the few "others", or the "owners" by id) and the ids for it."""
    others = getattr(people, "others", None)
    if others is not None:
        return ("others", {"others": list(others)}) if others else ("all", {})
    return "owners", {"owners": [p.id if isinstance(p, Person) else p for p in people]}


def owned_by_bound(column: ColumnElement, form: str) -> ColumnElement[bool]:
    """``owned_by`` for a statement built once: ``form`` from ``owners_of``, whose parameters
    are bound at execution."""
    if form == "all":
        return true()
    if form == "others":
        return column.not_in(bindparam("others", expanding=True))
    return one_of(column, bindparam("owners"))


def _in_period(column: ColumnElement, actor: User, period: Period) -> ColumnElement[bool]:
    start, end = period.utc_bounds(actor.organization.time_zone)
    return (column >= start) & (column < end)


def _partial_day(actor: User, period: Period, owners: Iterable[int]) -> ColumnElement[bool] | None:
    """The live activities of these owners on a to-date period's last day, from its local
    midnight to the period's end: the part of the period the rollups cannot serve. None for a
    period of whole days."""
    if period.until is None:
        return None
    zone = actor.organization.time_zone
    return (
        (Activity.organization_id == actor.organization_id)
        & live(Activity)
        & one_of(Activity.owner_id, owners)
        & (Activity.occurred_at >= local_midnight(period.until.date(), zone))
        & (Activity.occurred_at < period.until.replace(tzinfo=ZoneInfo(zone)).astimezone(timezone.utc))
    )


def _closed_in(
    actor: User, period: Period, owners: Iterable[Person] | Iterable[int], statuses: tuple[str, ...] = ("won", "lost")
) -> ColumnElement[bool]:
    """Deals of these owners (``People`` or ids) closed (``closed_at``) in the period with one of these statuses."""
    return (
        (Opportunity.organization_id == actor.organization_id)
        & live(Opportunity)
        & Opportunity.status.in_(statuses)
        & owned_by(Opportunity.owner_id, owners)
        & _in_period(Opportunity.closed_at, actor, period)
    )


@dataclass
class ReportScope:
    """What a report is about, resolved once per request: who asks, for which period, team
    and rep, and so which people; every figure is a function of it (and of a period, where it
    compares one with another). ``report_scope`` makes one."""

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
        # A team's members on the period's last day, or today while it runs.
        return team_members(self.session, self.actor, self.team_id, self.rep_id, min(self.period.last_day, self.today))

    @cached_property
    def emails(self) -> dict[str, str]:
        """Each person's e-mail by the name the report shows them under (``told_apart``): the CSVs carry it."""
        return {person.name: person.email for person in self.people}

    @cached_property
    def comparison(self) -> Period:
        return comparison_for(self.period, self.year_over_year)

    @cached_property
    def teams(self) -> list[Team]:
        """The teams the actor may pick (``visible_teams``): the page's filter and the teams' quotas."""
        return visible_teams(self.session, self.actor)

    def elsewhere(self, session: Session, actor: User) -> ReportScope:
        """The same scope in another session (``actor`` is the same user, loaded there), its
        people as resolved here."""
        moved = replace(self, session=session, actor=actor)
        moved.people = self.people
        return moved

    def among(self, people: list[Person]) -> ReportScope:
        """The same scope for some of its people only: the page's per-rep tables of a big team."""
        narrowed = replace(self)
        narrowed.people = people
        return narrowed


def report_scope(
    session: Session,
    actor: User,
    period: Period | None = None,
    *,
    today: date | None = None,
    now: datetime | None = None,
    team_id: int | None = None,
    rep_id: int | None = None,
    year_over_year: bool = False,
    months: int = 12,
    every_rep: bool = False,
    people: list[Person] | None = None,
) -> ReportScope:
    """The scope of a report, its people resolved (and the actor's right to them checked) now,
    unless ``people`` resolved already for this actor and scope (a report's second session).
    ``now`` defaults to the wall clock, ``today`` to its date in the organization's zone, the
    period to this month."""
    if months not in (12, 24):
        raise DomainError("Trends cover 12 or 24 months.")
    now = now or datetime.now(timezone.utc)
    today = today or local_today(actor.organization.time_zone, now)
    scope = ReportScope(
        session,
        actor,
        period or period_for("this_month", today),
        today,
        now,
        team_id,
        rep_id,
        year_over_year,
        months,
        every_rep,
    )
    if people is None:
        scope.people  # noqa: B018 - resolves and checks the scope now
    else:
        scope.people = people
    return scope


def visible_teams(session: Session, actor: User) -> list[Team]:
    """The teams the actor may pick on the dashboard: an admin's all, a manager's own."""
    require_role(actor, "manager", "admin")
    query = select(Team).where(Team.organization_id == actor.organization_id).order_by(Team.name)
    if actor.role == "manager":
        query = query.where(Team.id == actor.team_id)
    return list(session.scalars(query))
