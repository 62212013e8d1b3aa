"""Teams: made, renamed, merged; a person moved from one to another on a day.

PRODUCT.md gives each user one team, so a manager leads one team: the team they belong to.
An organization with two teams under one person makes that person an admin, or merges them.

A move takes effect on a day (``TeamMove``). A team's figures for a period count the people who
were its members on the period's last day, or today for a period still running
(``members_on``): the periods that ended before a rep moved keep the rep's work in the team where
it was done, and a period the move falls in counts it in the team the rep joined.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from services.access import get_scoped, require_role
from services.audit import record_event
from services.errors import DomainError
from services.models import Invitation, Quota, Team, TeamMove, User
from services.schemas import in_date_range, parse_id
from services.periods import local_today


def _name(session: Session, org_id: int, name: Any, team_id: int | None = None) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not 1 <= len(name) <= 120:
        raise DomainError("Name the team, in 120 characters at most.", {"name": ["Name the team."]})
    clash = session.scalar(
        select(Team.id).where(
            Team.organization_id == org_id, func.lower(Team.name) == name.lower(), Team.id != (team_id or 0)
        )
    )
    if clash is not None:
        raise DomainError("Another team has this name.", {"name": ["Another team has this name."]})
    return name


def create_team(session: Session, actor: User, name: Any) -> Team:
    require_role(actor, "admin")
    team = Team(organization_id=actor.organization_id, name=_name(session, actor.organization_id, name))
    session.add(team)
    session.flush()
    record_event(session, actor, "create", team, after={"name": team.name})
    return team


def rename_team(session: Session, actor: User, team_id: int, name: Any) -> Team:
    require_role(actor, "admin")
    team = get_scoped(session, actor, Team, team_id, "team")
    before = team.name
    team.name = _name(session, actor.organization_id, name, team.id)
    if team.name != before:
        record_event(session, actor, "rename", team, before={"name": before}, after={"name": team.name})
    return team


def merge_teams(session: Session, actor: User, team_id: int, into_id: Any, on: date | None = None) -> Team:
    """Team ``team_id`` joins ``into_id``: its members move (on ``on``, today by default), its
    pending invitations and its quotas go to the other team (a month's targets on the same metric
    added up), and the emptied team is removed."""
    require_role(actor, "admin")
    team = get_scoped(session, actor, Team, team_id, "team")
    into = get_scoped(session, actor, Team, parse_id(into_id) or 0, "team")
    if into.id == team.id:
        raise DomainError("Choose another team to merge into.", {"into_id": ["Another team."]})
    on = on or local_today(actor.organization.time_zone)  # the organization's today
    members = list(
        session.scalars(select(User).where(User.organization_id == actor.organization_id, User.team_id == team.id))
    )
    for member in members:
        _move(session, member, into.id, on)
    session.execute(update(Invitation).where(Invitation.team_id == team.id).values(team_id=into.id))
    kept = {
        (q.period, q.period_start, q.metric, q.activity_type): q
        for q in session.scalars(select(Quota).where(Quota.team_id == into.id))
    }
    for quota in session.scalars(select(Quota).where(Quota.team_id == team.id)):
        same = kept.get((quota.period, quota.period_start, quota.metric, quota.activity_type))
        if same is not None:
            same.target += quota.target
            session.delete(quota)
        else:
            quota.team_id = into.id
    # Moves of the past keep naming the team as it was; the merged team's row goes, so they name none.
    record_event(
        session,
        actor,
        "merge",
        team,
        before={"name": team.name, "members": [m.id for m in members]},
        after={"into_id": into.id, "into": into.name, "on": on.isoformat()},
    )
    session.flush()
    session.delete(team)
    return into


def _move(session: Session, person: User, team_id: int | None, on: date) -> TeamMove | None:
    if person.team_id == team_id:
        return None
    move = TeamMove(
        organization_id=person.organization_id,
        user_id=person.id,
        from_team_id=person.team_id,
        to_team_id=team_id,
        on_day=on,
    )
    session.add(move)
    person.team_id = team_id
    return move


def move_person(session: Session, actor: User, user_id: int, team_id: Any, on: Any) -> User:
    """An admin moves someone to another team (or none) from a day on; the day may be in the past
    (the move was made late) but not before an earlier move of theirs."""
    require_role(actor, "admin")
    person = get_scoped(session, actor, User, user_id, "person")
    target = None
    if team_id not in (None, "", "none"):
        target = get_scoped(session, actor, Team, parse_id(team_id) or 0, "team").id
    if isinstance(on, str):
        try:
            on = date.fromisoformat(on.strip()) if on.strip() else None
        except ValueError:
            raise DomainError("Enter the day of the move as YYYY-MM-DD.", {"on": ["Enter a date."]}) from None
    on = on or local_today(actor.organization.time_zone)
    if not in_date_range(on):
        raise DomainError("Enter a date between 1900 and 2199.", {"on": ["Out of range."]})
    last = session.scalar(select(func.max(TeamMove.on_day)).where(TeamMove.user_id == person.id))
    if last is not None and on < last:
        raise DomainError(
            f"{person.name} last moved on {last.isoformat()}: a later move starts on or after it.",
            {"on": ["Too early."]},
        )
    before = person.team_id
    if _move(session, person, target, on) is not None:
        record_event(
            session, actor, "move", person, before={"team_id": before}, after={"team_id": target, "on": on.isoformat()}
        )
    return person


def members_on(session: Session, organization_id: int, team_id: int, day: date, people: Iterable[Any]) -> set[int]:
    """The ids of ``people`` (``Person`` rows of the organization's members, with their current
    ``team_id``) who were in team ``team_id`` on ``day``: each person's team on a day is the team
    their first move after it left, else their team now."""
    first_after: dict[int, int | None] = {}
    for user_id, from_team in session.execute(
        select(TeamMove.user_id, TeamMove.from_team_id)
        .where(TeamMove.organization_id == organization_id, TeamMove.on_day > day)
        .order_by(TeamMove.on_day.desc(), TeamMove.id.desc())
    ):
        first_after[user_id] = from_team  # the earliest move after the day is read last
    return {
        person.id
        for person in people
        if (first_after[person.id] if person.id in first_after else person.team_id) == team_id
    }


def moved_since(session: Session, organization_id: int, day: date) -> bool:
    """Whether anyone moved team after ``day``: if not, every team's members then are its members now."""
    return (
        session.scalar(
            select(TeamMove.id).where(TeamMove.organization_id == organization_id, TeamMove.on_day > day).limit(1)
        )
        is not None
    )


def teams(session: Session, actor: User) -> list[tuple[Team, int]]:
    """The organization's teams with their number of active members."""
    require_role(actor, "admin")
    counts = dict(
        session.execute(
            select(User.team_id, func.count())
            .where(User.organization_id == actor.organization_id, User.is_active)
            .group_by(User.team_id)
        ).all()
    )
    return [
        (team, counts.get(team.id, 0))
        for team in session.scalars(
            select(Team).where(Team.organization_id == actor.organization_id).order_by(Team.name)
        )
    ]
