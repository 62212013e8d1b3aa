"""The append-only audit trail: who changed what, when, before and after."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from services.models import AuditEvent, Base, User


def snapshot(record: Base, fields: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The record's column values as JSON-ready data."""
    columns = fields or tuple(attr.key for attr in inspect(record).mapper.column_attrs)
    return {name: _plain(getattr(record, name)) for name in columns}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def record_event(
    session: Session,
    actor: User,
    action: str,
    record: Base,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event; call after ``flush`` so that a new record has its id."""
    event = AuditEvent(
        organization_id=actor.organization_id,
        actor_id=actor.id,
        action=action,
        record_type=type(record).__tablename__,
        record_id=record.id,  # type: ignore[attr-defined]
        before=before,
        after=after if after is not None else snapshot(record),
    )
    session.add(event)
    return event
