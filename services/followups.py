"""Follow-ups: the next step a rep promises, with a due date."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.access import UNDO_MINUTES, get_scoped, require_edit, require_undoable
from services.audit import record_event, snapshot
from services.errors import DomainError
from services.models import Account, Contact, FollowUp, Opportunity, User, live
from services.periods import local_midnight, local_today
from services.schemas import FollowUpSchema, load
from services.types import localised, utcnow

FOLLOW_UP_FIELDS = ("title", "due_at", "done_at", "owner_id", "contact_id", "account_id", "opportunity_id")
LINKS = {
    "contact_id": (Contact, "contact"),
    "account_id": (Account, "account"),
    "opportunity_id": (Opportunity, "deal"),
}


def add_follow_up(
    session: Session, actor: User, data: Mapping[str, Any], *, now: datetime | None = None, zone: str | None = None
) -> FollowUp:
    """A follow-up; a due time typed without a zone is the reader's wall-clock time in ``zone``
    (their mailbox's), else their organization's."""
    values = load(FollowUpSchema, data)
    now = now or utcnow()
    links = {
        key: get_scoped(session, actor, model, values[key], what).id
        for key, (model, what) in LINKS.items()
        if values.get(key)
    }
    if not links:
        raise DomainError("Attach the follow-up to a contact, an account or a deal.")
    typed_in = zone or actor.organization.time_zone
    due_at = localised(values["due_at"], typed_in)
    if due_at < now.replace(second=0, microsecond=0):
        raise DomainError("Choose a due date in the future.", {"due_at": ["In the past."]})
    reminder_at = localised(values["reminder_at"], typed_in) if values.get("reminder_at") else None
    if reminder_at is not None and reminder_at > due_at:
        raise DomainError("Be reminded before it is due, not after.", {"reminder_at": ["After the due time."]})
    follow_up = FollowUp(
        organization_id=actor.organization_id,
        title=values["title"].strip(),
        due_at=due_at,
        reminder_at=reminder_at,
        time_zone=zone,
        owner_id=actor.id,
        created_at=now,
        **links,
    )
    session.add(follow_up)
    session.flush()
    record_event(session, actor, "create", follow_up, after=snapshot(follow_up, FOLLOW_UP_FIELDS))
    return follow_up


def complete_follow_up(session: Session, actor: User, follow_up_id: int, *, now: datetime | None = None) -> FollowUp:
    follow_up = get_scoped(session, actor, FollowUp, follow_up_id, "follow-up", for_update=True)
    require_edit(actor, follow_up.owner)
    if follow_up.done_at is not None:
        raise DomainError("This follow-up is already done.")
    before = snapshot(follow_up, FOLLOW_UP_FIELDS)
    follow_up.done_at = now or utcnow()
    session.flush()
    record_event(session, actor, "complete", follow_up, before=before, after=snapshot(follow_up, FOLLOW_UP_FIELDS))
    return follow_up


def undo_follow_up(session: Session, actor: User, follow_up_id: int, *, now: datetime | None = None) -> FollowUp:
    """Take back a follow-up the rep just set (theirs, within ``UNDO_MINUTES``): it goes, softly,
    as an undone log does."""
    now = now or utcnow()
    follow_up = get_scoped(session, actor, FollowUp, follow_up_id, "follow-up", for_update=True)
    require_undoable(
        actor,
        follow_up.owner_id,
        follow_up.created_at,
        now,
        "Only the person who set it can take it back.",
        "It is too late to undo this follow-up; mark it done instead.",
    )
    follow_up.deleted_at = now
    session.flush()
    record_event(session, actor, "undo", follow_up, before={"deleted_at": None}, after={"deleted_at": now.isoformat()})
    return follow_up


def reopen_follow_up(session: Session, actor: User, follow_up_id: int, *, now: datetime | None = None) -> FollowUp:
    """Undo a follow-up's "done" (within ``UNDO_MINUTES`` of it): open again, as it was."""
    now = now or utcnow()
    follow_up = get_scoped(session, actor, FollowUp, follow_up_id, "follow-up", for_update=True)
    require_edit(actor, follow_up.owner)
    if follow_up.done_at is None:
        raise DomainError("This follow-up is not done.")
    if now - follow_up.done_at > timedelta(minutes=UNDO_MINUTES):
        raise DomainError("It is too late to undo this; set a new follow-up instead.")
    before = snapshot(follow_up, FOLLOW_UP_FIELDS)
    follow_up.done_at = None
    session.flush()
    record_event(session, actor, "reopen", follow_up, before=before, after=snapshot(follow_up, FOLLOW_UP_FIELDS))
    return follow_up


def accounts_of(session: Session, follow_ups: list[FollowUp]) -> dict[int, int]:
    """Each follow-up's account (its own, its deal's, else its contact's), by follow-up: where
    My day's item opens."""
    if not follow_ups:
        return {}
    rows = session.execute(
        select(FollowUp.id, func.coalesce(FollowUp.account_id, Opportunity.account_id, Contact.account_id))
        .outerjoin(Opportunity, Opportunity.id == FollowUp.opportunity_id)
        .outerjoin(Contact, Contact.id == FollowUp.contact_id)
        .where(FollowUp.id.in_([f.id for f in follow_ups]))
    )
    return {follow_up_id: account_id for follow_up_id, account_id in rows if account_id}


def open_follow_ups(
    session: Session, actor: User, limit: int = 20, *, due_before: datetime | None = None
) -> list[FollowUp]:
    """The actor's own follow-ups not done yet, soonest due first (``due_before``: only those due
    before then)."""
    due = [FollowUp.due_at < due_before] if due_before is not None else []
    return list(
        session.scalars(
            select(FollowUp)
            .where(
                FollowUp.organization_id == actor.organization_id,
                FollowUp.owner_id == actor.id,
                FollowUp.done_at.is_(None),
                live(FollowUp),
                *due,
            )
            .order_by(FollowUp.due_at)
            .limit(limit)
        )
    )


def my_day(session: Session, actor: User, now: datetime, zone: str | None = None) -> list[FollowUp]:
    """The actor's open follow-ups due by the end of their today in ``zone`` (their mailbox's,
    else their organization's), the overdue among them first: what the pane lists with no mail open."""
    zone = zone or actor.organization.time_zone
    return open_follow_ups(
        session, actor, 50, due_before=local_midnight(local_today(zone, now) + timedelta(days=1), zone)
    )
