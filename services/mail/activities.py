"""Activities: logging emails, calls, meetings, visits and notes, and rating them.

Logging is idempotent on the external id (internetMessageId, Gmail message id, calendar
event id): the unique constraint on (organization, external id) decides a race between two
clients, and the loser gets the winner's activity back instead of an error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.access import get_scoped, require_edit, require_undoable
from services.change_numbers import lock_changes
from services.audit import record_event, snapshot
from services.mail.contacts import account_for_domain, contacts_for_addresses, last_thread_deal
from services import latest, lexicon, notes, privacy, sentiment
from services.errors import DomainError, Forbidden
from services.rollups import count_activity
from services.models import Account, Activity, ActivityParticipant, Contact, Lead, Opportunity, Organization, User, live
from services.schemas import (
    ActivitySchema,
    EmailItemSchema,
    MeetingItemSchema,
    NoteSchema,
    RatingSchema,
    SendingItemSchema,
    load,
)
from services.mail.text import domain_of, html_to_text, sanitize_html, sender_problem
from services.types import localised, utcnow

ACTIVITY_FIELDS = (
    "type",
    "direction",
    "occurred_at",
    "duration_minutes",
    "outcome",
    "subject",
    "contact_id",
    "account_id",
    "opportunity_id",
    "owner_id",
    "external_id",
    "rating",
    "is_private",
)
DEFAULT_DIRECTION = {"note": "internal", "task": "internal"}


def activity_by_external_id(
    session: Session, organization_id: int, external_id: str, *, for_update: bool = False
) -> Activity | None:
    query = select(Activity).where(Activity.organization_id == organization_id, Activity.external_id == external_id)
    if for_update:
        lock_changes(session, organization_id)
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


def log_activity(
    session: Session, actor: User, data: Mapping[str, Any], *, now: datetime | None = None
) -> tuple[Activity, bool]:
    """Log one activity. Returns ``(activity, created)``; ``created`` is False when an
    activity with the same external id already existed (then nothing is written)."""
    values = load(ActivitySchema, data)
    return _log(session, actor, values, now or utcnow())


def _log(
    session: Session, actor: User, values: dict[str, Any], now: datetime, known: dict[str, Contact] | None = None
) -> tuple[Activity, bool]:
    """Write one activity; ``known``: the contacts of its participants' addresses, when the
    caller has read them already (``contacts_for_addresses``)."""
    org = actor.organization
    external_id = values.get("external_id")
    # Locked: of racing re-logs of an undone message, one restores it and the rest find it live.
    if external_id and (existing := activity_by_external_id(session, org.id, external_id, for_update=True)):
        if existing.deleted_at is not None and existing.owner_id == actor.id:
            # Logged, undone, logged again: the same message is the same activity.
            existing.deleted_at = None
            session.flush()
            count_activity(session, org, existing, +1)
            record_event(session, actor, "restore", existing, before={"deleted_at": "set"}, after={"deleted_at": None})
            return existing, True
        return existing, False

    contact = get_scoped(session, actor, Contact, values["contact_id"], "contact") if values.get("contact_id") else None
    deal = (
        get_scoped(session, actor, Opportunity, values["opportunity_id"], "deal")
        if values.get("opportunity_id")
        else None
    )
    account = get_scoped(session, actor, Account, values["account_id"], "account") if values.get("account_id") else None
    lead = get_scoped(session, actor, Lead, values["lead_id"], "lead") if values.get("lead_id") else None
    # A deal's activity is with the deal's account, whichever account the form named: a mail
    # from one account's contact can be about a deal the rep found at another (the pane's search).
    account = (deal.account if deal else None) or account or (contact.account if contact else None)

    body_html = sanitize_html(values.get("body_html"))
    body_text = values.get("body_text") or html_to_text(body_html)
    # Only the type's own checklist questions count (a form may carry the other types' too).
    all_checklists = (
        notes.checklists(session, org.id) if values["answers"] or values["type"] in notes.SCORED_TYPES else {}
    )
    questions = all_checklists.get(values["type"], [])
    answers = {q: values["answers"][q].strip() for q in questions if (values["answers"].get(q) or "").strip()}
    if answers:
        # Checklist answers are part of the note a manager reads, question by question.
        answered = "\n".join(f"{question}: {answer}" for question, answer in answers.items())
        body_text = f"{answered}\n\n{body_text}" if body_text else answered
    checklist_questions, checklist_answered = notes.score(values["type"], body_text, all_checklists)

    activity = Activity(
        organization_id=org.id,
        type=values["type"],
        direction=values.get("direction") or DEFAULT_DIRECTION.get(values["type"], "outbound"),
        occurred_at=localised(values["occurred_at"], org.time_zone) if values.get("occurred_at") else now,
        duration_minutes=values.get("duration_minutes"),
        outcome=values.get("outcome"),
        subject=values.get("subject"),
        body_text=body_text,
        body_html=body_html,
        contact=contact,
        account=account,
        opportunity=deal,
        lead_id=lead.id if lead else None,
        owner_id=actor.id,
        source=values["source"],
        external_id=external_id,
        conversation_id=values.get("conversation_id"),
        is_private=values["is_private"],
        checklist_questions=checklist_questions,
        checklist_answered=checklist_answered,
        created_at=now,
        updated_at=now,
    )
    sentiment.score_activity(session, org, activity, now)
    if known is None:
        known = contacts_for_addresses(
            session, org.id, [participant["address"] for participant in values["participants"]]
        )
    for participant in values["participants"]:
        activity.participants.append(
            ActivityParticipant(
                organization_id=org.id,
                address=participant["address"],
                role=participant["role"],
                contact=known.get(participant["address"]),
            )
        )
    try:
        with session.begin_nested():
            session.add(activity)
            session.flush()
    except IntegrityError:
        if external_id and (existing := activity_by_external_id(session, org.id, external_id)):
            return existing, False
        raise
    count_activity(session, org, activity, +1)
    record_event(session, actor, "log", activity, after=snapshot(activity, ACTIVITY_FIELDS))
    return activity, True


SENDING = "send:"  # the external id of a message logged as it was sent, before it has its own


def log_email(
    session: Session, actor: User, data: Mapping[str, Any], *, now: datetime | None = None, sending: bool = False
) -> tuple[Activity, bool]:
    """Log a mail item as the pane reads it. Inbound or outbound is decided by the mailbox
    owner (the actor): a message from the actor is outbound, any other inbound.

    ``sending``: the actor's message as Outlook sends it (``OnMessageSend``), before it has an
    id: it is logged under the add-in's key for it. Opened later from Sent Items with that key,
    the same activity takes the message's id, and nothing more is logged."""
    item = load(SendingItemSchema if sending else EmailItemSchema, data)
    org = actor.organization
    outbound = item["from_address"] == actor.email
    if sending:
        if not outbound:
            raise DomainError(
                "Only your own message is logged as you send it.", {"from_address": ["Not your address."]}
            )
        item["internet_message_id"] = SENDING + item["send_key"]
    elif item.get("send_key") and (
        sent := _logged_as_sent(session, actor, item["send_key"], item["internet_message_id"])
    ):
        return sent, False
    privacy.refuse_blocked(session, actor, [item["from_address"], *item["to"], *item["cc"]])
    if not outbound and (problem := sender_problem(item["from_address"])):
        raise DomainError(problem, {"from_address": [problem]})
    recipients = item["to"] + item["cc"]
    if privacy.is_internal(org, [item["from_address"], *recipients]):
        if not org.setting("log_internal_mail"):
            raise DomainError(privacy.INTERNAL_MESSAGE)
        direction = "internal"
    else:
        direction = "outbound" if outbound else "inbound"

    # The customer is the sender of an inbound mail, else the first known recipient.
    customers = recipients if outbound else [item["from_address"]]
    known = contacts_for_addresses(session, org.id, [item["from_address"], *recipients])
    contact = next((known[a] for a in customers if a in known), None)
    account = (
        contact.account
        if contact
        else next((acc for a in customers if (acc := account_for_domain(session, org.id, domain_of(a)))), None)
    )
    if item.get("account_id"):  # chosen by the rep for this mail (a search): its deals, not the sender's
        account = get_scoped(session, actor, Account, item["account_id"], "account")
    deal_id = item.get("opportunity_id") or _only_open_deal(session, org.id, account)
    participants = [{"address": item["from_address"], "role": "from"}]
    participants += [{"address": a, "role": "to"} for a in item["to"]] + [
        {"address": a, "role": "cc"} for a in item["cc"]
    ]
    values = {
        "type": "email",
        "direction": direction,
        "occurred_at": item.get("sent_at"),
        "subject": item["subject"] or None,
        "body_html": item.get("body_html"),
        "body_text": item.get("body_text"),
        "external_id": item["internet_message_id"],
        "conversation_id": item.get("conversation_id"),
        "contact_id": contact.id if contact else None,
        "account_id": account.id if account else None,
        "opportunity_id": deal_id,
        "source": item["source"],
        "participants": participants,
        "answers": {},
        "is_private": item["is_private"],
    }
    return _log(session, actor, values, now or utcnow(), known)


def _logged_as_sent(session: Session, actor: User, send_key: str, message_id: str) -> Activity | None:
    """The actor's activity logged as the message was sent, given the message's id now that it
    has one (unless another activity already has that id)."""
    sent = activity_by_external_id(session, actor.organization_id, SENDING + send_key, for_update=True)
    if sent is None or sent.owner_id != actor.id or sent.deleted_at is not None:
        return None
    if activity_by_external_id(session, actor.organization_id, message_id) is None:
        before = {"external_id": sent.external_id}
        sent.external_id = message_id
        session.flush()
        record_event(session, actor, "update", sent, before=before, after={"external_id": message_id})
    return sent


def thread_open_deal(session: Session, organization_id: int, conversation_id: str | None) -> int | None:
    """The deal a mail of this thread was last logged to, while it is open: where capture files
    the thread's next mail (the pane preselects it; a rep's "None" there is theirs to make)."""
    if conversation_id and (deal_id := last_thread_deal(session, organization_id, conversation_id)):
        still_open = select(Opportunity.id).where(
            Opportunity.id == deal_id, Opportunity.status == "open", live(Opportunity)
        )
        if session.scalar(still_open) is not None:
            return deal_id
    return None


def _only_open_deal(session: Session, organization_id: int, account: Account | None) -> int | None:
    if account is None:
        return None
    ids = session.scalars(
        select(Opportunity.id)
        .where(
            Opportunity.organization_id == organization_id,
            Opportunity.account_id == account.id,
            Opportunity.status == "open",
            live(Opportunity),
        )
        .limit(2)
    ).all()
    return ids[0] if len(ids) == 1 else None


def add_note(session: Session, actor: User, data: Mapping[str, Any], *, now: datetime | None = None) -> Activity:
    values = load(NoteSchema, data)
    if not any(values.get(k) for k in ("contact_id", "account_id", "opportunity_id")):
        raise DomainError("Attach the note to a contact, an account or a deal.")
    note = {
        "type": "note",
        "direction": "internal",
        "body_text": values["body"].strip(),
        "is_private": values["is_private"],
        "source": "web",
        "participants": [],
        "answers": {},
        **{k: values.get(k) for k in ("contact_id", "account_id", "opportunity_id")},
    }
    activity, _ = _log(session, actor, note, now or utcnow())
    return activity


def log_meeting(
    session: Session,
    actor: User,
    data: Mapping[str, Any],
    *,
    now: datetime | None = None,
    id_prefix: str = "event:",
    private: bool = False,
) -> tuple[Activity, bool]:
    """Log a calendar appointment as a meeting, its attendees matched to contacts. A meeting
    that has ended is logged as held; one still ahead as planned (no outcome yet).

    ``id_prefix``: what the event's id is (the pane's item id, or capture's iCalendar UID);
    ``private``: the event is private in the rep's calendar."""
    item = load(MeetingItemSchema, data)
    now = now or utcnow()
    org = actor.organization
    start = localised(item["start"], org.time_zone)
    end = localised(item["end"], org.time_zone) if item.get("end") else start
    if end < start:
        raise DomainError("The meeting ends before it starts.", {"end": ["Before the start."]})
    attendees = [a for a in dict.fromkeys(item["attendees"]) if a != actor.email]
    privacy.refuse_blocked(session, actor, attendees)
    known = contacts_for_addresses(session, org.id, attendees)
    contact = next((known[a] for a in attendees if a in known), None)
    account = (
        contact.account
        if contact
        else next((acc for a in attendees if (acc := account_for_domain(session, org.id, domain_of(a)))), None)
    )
    values = {
        "type": "meeting",
        "direction": "outbound",
        "occurred_at": start,
        "duration_minutes": min(int((end - start).total_seconds() // 60), 24 * 60),
        "outcome": "held" if end <= now else None,
        "subject": item.get("subject") or None,
        "body_text": item.get("body_text"),
        "external_id": id_prefix + item["event_id"],
        "contact_id": contact.id if contact else None,
        "account_id": account.id if account else None,
        "opportunity_id": item.get("opportunity_id") or _only_open_deal(session, org.id, account),
        "source": item["source"],
        "participants": [{"address": a, "role": "attendee"} for a in attendees],
        "answers": {},
        "is_private": private,
    }
    return _log(session, actor, values, now, known)


def set_private(session: Session, actor: User, activity_id: int, private: bool) -> Activity:
    """Mark an activity private (its subject and text its owner's alone) or shared again: its
    owner's choice only, managers and admins included. It counts in every figure either way."""
    activity = get_scoped(session, actor, Activity, activity_id, "activity")
    if activity.owner_id != actor.id:
        raise Forbidden("Only the rep who logged it can make it private or shared.")
    if activity.is_private != private:
        activity.is_private = private
        session.flush()
        record_event(
            session,
            actor,
            "private" if private else "share",
            activity,
            before={"is_private": not private},
            after={"is_private": private},
        )
    return activity


def undo_log(session: Session, actor: User, activity_id: int, *, now: datetime | None = None) -> Activity:
    """Take back a log the rep just made. Only the owner, only within ``UNDO_MINUTES``; it is
    a soft delete, so the audit trail keeps it."""
    now = now or utcnow()
    activity = get_scoped(session, actor, Activity, activity_id, "activity", for_update=True)
    require_undoable(
        actor,
        activity.owner_id,
        activity.created_at,
        now,
        "Only the person who logged it can undo a log.",
        "It is too late to undo this log.",
    )
    delete_counted(session, actor.organization, activity, now)
    record_event(session, actor, "undo", activity, before={"deleted_at": None}, after={"deleted_at": now.isoformat()})
    return activity


def change_counted(session: Session, organization: Organization, activity: Activity, values: Mapping[str, Any]) -> None:
    """The one way a logged activity's fields change (the API's edits; the imports and capture
    to come): the activity as it was leaves the rollups, as it is now enters them, and its
    deal's and account's latest times are read again (an outcome can make it an inbound
    interaction, or stop it being one). The caller checks the role and audits."""
    if activity.deleted_at is not None:
        raise DomainError("That activity was deleted: it cannot be changed.", code="deleted")
    count_activity(session, organization, activity, -1)
    for key, value in values.items():
        setattr(activity, key, value)
    session.flush()
    count_activity(session, organization, activity, 1)
    latest.touch(session, activity, -1)  # read again from the live activities, whatever moved


def delete_counted(session: Session, organization: Organization, activity: Activity, now: datetime) -> None:
    """The one way a logged activity is deleted (softly: it stays, marked, for the audit trail and
    the syncing clients): it leaves the rollups and its deal's and account's latest times, once
    (an activity deleted already is left as it is)."""
    if activity.deleted_at is not None:
        return
    activity.deleted_at = now
    session.flush()
    count_activity(session, organization, activity, -1)


def rate_activity(session: Session, actor: User, activity_id: int, data: Mapping[str, Any]) -> Activity:
    values = load(RatingSchema, data)
    activity = get_scoped(session, actor, Activity, activity_id, "activity")
    require_edit(actor, activity.owner)
    before = {"rating": activity.rating}
    activity.rating = values["rating"] or None  # 0: cleared
    session.flush()
    lexicon.learn_from_rating(session, actor, activity, rated_before=before["rating"] is not None)
    record_event(session, actor, "rate", activity, before=before, after={"rating": activity.rating})
    return activity
