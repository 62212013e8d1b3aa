"""Who may see and change what: the organization scope and the role rules, in one place.

* Nobody reaches another organization's rows: ``get_scoped`` answers "not found" for them,
  exactly as for a row that does not exist, so ids cannot be probed.
* Reps edit their own records, managers their team's, admins the organization's.
* Reps and managers read their team's activities (a shared sales log, not a spy tool);
  a private activity's subject and body are its owner's alone.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from services.errors import Forbidden, NotFound
from services.models import Activity, Base, User

M = TypeVar("M", bound=Base)


def get_scoped(session: Session, actor: User, model: type[M], record_id: int | None, what: str | None = None) -> M:
    """The record with this id in the actor's organization, not soft-deleted; else NotFound."""
    label = what or model.__name__.lower()
    if record_id is None:
        raise NotFound(label)
    record = session.get(model, record_id)
    if (
        record is None
        or getattr(record, "organization_id", None) != actor.organization_id
        or getattr(record, "deleted_at", None) is not None
    ):
        raise NotFound(label)
    return record


def can_edit(actor: User, owner: User | None) -> bool:
    if actor.role == "admin":
        return True
    if owner is None:
        return actor.role == "manager"
    if owner.organization_id != actor.organization_id:
        return False
    if owner.id == actor.id:
        return True
    return actor.role == "manager" and actor.team_id is not None and owner.team_id == actor.team_id


def require_edit(actor: User, owner: User | None) -> None:
    if not can_edit(actor, owner):
        raise Forbidden()


def require_role(actor: User, *roles: str) -> None:
    if actor.role not in roles:
        raise Forbidden("Your role does not allow this.")


def visible_activities(actor: User) -> ColumnElement[bool]:
    """The activities the actor may list: the team's (all of the organization's for admins)."""
    in_org = Activity.organization_id == actor.organization_id
    if actor.role == "admin":
        return in_org & Activity.deleted_at.is_(None)
    team_owners = select(User.id).where(User.team_id == actor.team_id) if actor.team_id else None
    mine = Activity.owner_id == actor.id
    seen = or_(mine, Activity.owner_id.in_(team_owners)) if team_owners is not None else mine
    return in_org & Activity.deleted_at.is_(None) & seen


def can_read_content(actor: User, activity: Activity) -> bool:
    """Private activities show their subject and body to their owner only."""
    return not activity.is_private or activity.owner_id == actor.id
