"""The append-only audit trail: who changed what, when, before and after."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from services.access import can_edit, get_scoped, readable_values
from services.errors import Forbidden
from services.models import AuditEvent, Base, Organization, User


def snapshot(record: Base, fields: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The record's column values as JSON-ready data."""
    columns = fields or tuple(attr.key for attr in inspect(record).mapper.column_attrs)
    return {name: plain(getattr(record, name)) for name in columns}


def plain(value: Any) -> Any:
    """A value as JSON keeps it: an amount as exact text, a time or a day in ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def record_event(
    session: Session,
    actor: User | None,
    action: str,
    record: Base,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event; call after ``flush`` so that a new record has its id. ``actor`` None: no
    person did it (a lead posted to an intake URL)."""
    if actor is not None:
        organization_id = actor.organization_id
    else:  # an organization's own record is its organization
        organization_id = record.id if isinstance(record, Organization) else record.organization_id  # type: ignore[attr-defined]
    event = AuditEvent(
        organization_id=organization_id,
        actor_id=actor.id if actor is not None else None,
        action=action,
        record_type=type(record).__tablename__,
        record_id=record.id,  # type: ignore[attr-defined]
        before=before,
        after=after if after is not None else snapshot(record),
    )
    session.add(event)
    return event


@dataclass
class HistoryEntry:
    at: datetime
    actor_name: str
    action: str
    changes: list[tuple[str, Any, Any]]  # field, before, after


def record_history(session: Session, actor: User, model: type[Base], record_id: int) -> list[HistoryEntry]:
    """A record's audit trail, for its owner, the owner's managers and admins."""
    record = get_scoped(session, actor, model, record_id)
    owner = getattr(record, "owner", None)
    if owner is None and getattr(record, "owner_id", None):
        owner = session.get(User, record.owner_id)  # type: ignore[attr-defined]
    if not can_edit(actor, owner):
        raise Forbidden("Only the owner, their manager and admins see a record's history.")
    events = session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.organization_id == actor.organization_id,
            AuditEvent.record_type == model.__tablename__,
            AuditEvent.record_id == record_id,
        )
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    ).all()
    names = dict(
        session.execute(select(User.id, User.name).where(User.id.in_({e.actor_id for e in events if e.actor_id}))).all()
    )
    entries = []
    for event in events:
        before, after = (
            readable_values(actor, record, event.before or {}),
            readable_values(actor, record, event.after or {}),
        )
        changed = [(key, before.get(key), after.get(key)) for key in after if before.get(key) != after.get(key)]
        entries.append(HistoryEntry(event.at, names.get(event.actor_id, "someone"), event.action, changed))
    return entries
