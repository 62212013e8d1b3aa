"""Who may see and change what: the organization scope and the role rules, in one place.

* Nobody reaches another organization's rows: ``get_scoped`` answers "not found" for them,
  exactly as for a row that does not exist, so ids cannot be probed.
* Reps edit their own records, managers their team's, admins the organization's.
* Reps and managers read their team's activities (a shared sales log, not a spy tool);
  a private activity's subject and body are its owner's alone.
* What the rep just did (a log, a deal's move) they alone may take back, within
  ``UNDO_MINUTES``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.orm import Session

from services.change_numbers import lock_changes
from services.errors import DomainError, Forbidden, NotFound
from services.models import Activity, Base, User, live
from services.schemas import parse_id

M = TypeVar("M", bound=Base)
UNDO_MINUTES = 10  # a log or a deal's move can be taken back this long (``activities.undo_log``, ``deals.undo_move``)


def get_scoped(
    session: Session,
    actor: User,
    model: type[M],
    record_id: int | None,
    what: str | None = None,
    *,
    for_update: bool = False,
) -> M:
    """The record with this id in the actor's organization, not soft-deleted; else NotFound.

    ``for_update`` is for a service about to change the record's state: the row is locked
    (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's writers already hold the database's
    lock) and read afresh, so of racing requests each sees the state the one before it left,
    and a change is made once."""
    label = what or model.__name__.lower()
    if record_id is None or parse_id(record_id) is None:
        raise NotFound(label)
    if for_update:
        lock_changes(session, actor.organization_id)
        record = session.get(model, record_id, with_for_update=True, populate_existing=True)
    else:
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


def require_undoable(actor: User, owner_id: int, since: datetime, now: datetime, who: str, late: str) -> None:
    """What taking something back needs: its own rep (``who`` says otherwise), within
    ``UNDO_MINUTES`` of ``since`` (``late`` says otherwise)."""
    if owner_id != actor.id:
        raise Forbidden(who)
    if now - since > timedelta(minutes=UNDO_MINUTES):
        raise DomainError(late)


def require_role(actor: User, *roles: str) -> None:
    if actor.role not in roles:
        raise Forbidden("Your role does not allow this.")


def visible_activities(actor: User) -> ColumnElement[bool]:
    """The activities the actor may list: the team's (all of the organization's for admins)."""
    return (
        (Activity.organization_id == actor.organization_id)
        & live(Activity)
        & seen_by(actor.role, actor.id, actor.team_id)
    )


def seen_by(role: str, me: Any, team: Any) -> ColumnElement[bool]:
    """Whose activities a reader lists: an admin everyone's, a member of a team the team's,
    anyone else their own. ``me`` and ``team`` are values, or bind parameters in a statement
    built once (``team`` None: no team)."""
    if role == "admin":
        return true()
    mine = Activity.owner_id == me
    return or_(mine, Activity.owner_id.in_(select(User.id).where(User.team_id == team))) if team is not None else mine


# What "content" means: the fields of an activity a private one keeps to its owner.
CONTENT_FIELDS = frozenset({"subject", "body_text", "body_html"})
HIDDEN = "(private)"


def can_read_content(actor: User, activity: Activity) -> bool:
    """The one visibility rule: a private activity shows its subject and body to its owner
    only (managers and admins included); every view of an activity's content asks this."""
    return not activity.is_private or activity.owner_id == actor.id


def readable_values(actor: User, record: Base, values: dict[str, Any]) -> dict[str, Any]:
    """A record's field values (an audit event's before or after) as the actor may see them:
    the content of a private activity someone else owns is replaced by ``HIDDEN``."""
    if not isinstance(record, Activity) or can_read_content(actor, record):
        return values
    return {key: (HIDDEN if key in CONTENT_FIELDS and value is not None else value) for key, value in values.items()}
