"""What capture takes from a connected mailbox, and how: through the pane's own write path.

A mail is taken when someone outside the organization takes part and the organization's rule
says so (``capture_rule``): a known contact (``contacts``), or an address at a known account's
domain (``domains``), which may also become a contact (``new_contacts``). Then ``log_email``
logs it exactly as the pane would: internal mail, the never-log lists, bounce and no-reply
senders are refused there, with the pane's own words, which become the reason it was skipped.
A mail the rep categorised or labelled *Private* becomes a private activity; one older than the
organization's retention keeps no body. Every message is one activity, whichever of the pane,
the Gmail card, the send event or capture saw it first (its Message-ID); a mail the rep
un-captured is never taken again.

A calendar event with an attendee from outside becomes a meeting (``log_meeting``), found again
by its iCalendar UID when it moves; cancelled, it is marked so, never deleted; once it has ended
uncancelled, it is held (``settle_meetings``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import privacy
from services.capture import notices
from services.audit import record_event
from services.capture.gmail import GmailMessage
from services.capture.providers import Event
from services.errors import DomainError
from services.mail.activities import (
    SENDING,
    activity_by_external_id,
    change_counted,
    log_email,
    log_meeting,
    thread_open_deal,
)
from services.mail.contacts import account_for_domain, contacts_for_addresses, create_contact
from services.mail.text import domain_of, name_from_address
from services.models import Activity, Capture, Mailbox, User

MEETING_ID = "ical:"
SENT_WINDOW = timedelta(minutes=15)  # a mail logged as it was sent, found again in Sent Items


@dataclass
class Outcome:
    """What became of one message or event: the activity it made or changed, or why none."""

    activity: Activity | None
    reason: str
    created: bool = False


def _outside(organization_domains: list[str], owner: User, addresses: list[str]) -> list[str]:
    own = set(organization_domains)
    return [a for a in dict.fromkeys(addresses) if a != owner.email and domain_of(a) not in own]


def why_taken(session: Session, owner: User, addresses: list[str]) -> tuple[str | None, list[str]]:
    """Why the organization's rule takes a mail with these outside addresses (None: it does
    not), and the addresses to make contacts of (``new_contacts`` only)."""
    org = owner.organization
    known = contacts_for_addresses(session, org.id, addresses)
    if contact := next((known[a] for a in addresses if a in known), None):
        return f"{contact.name} is a contact", []
    rule = org.setting("capture_rule")
    if rule == "contacts":
        return None, []
    for address in addresses:
        if account := account_for_domain(session, org.id, domain_of(address)):
            new = [a for a in addresses if a not in known and account_for_domain(session, org.id, domain_of(a))]
            return f"{domain_of(address)} is {account.name}'s domain", new if rule == "new_contacts" else []
    return None, []


def capture_message(session: Session, mailbox: Mailbox, message: GmailMessage, now: datetime) -> Outcome:
    owner = mailbox.user
    org = owner.organization
    if (existing := activity_by_external_id(session, org.id, message.internet_message_id)) is not None:
        return Outcome(existing, "already in the CRM" if existing.deleted_at is None else "taken back before")
    if message.from_address == owner.email and (sent := _logged_as_sent(session, owner, message)):
        return Outcome(sent, "logged as it was sent")
    outside = _outside(org.domains or [], owner, message.addresses)
    if not outside and not org.setting("log_internal_mail"):
        return Outcome(None, privacy.INTERNAL_MESSAGE)
    reason, new_contacts = why_taken(session, owner, outside)
    if reason is None:
        return Outcome(None, "no contact or account of the organization takes part")
    item = message.as_email_item()
    item["source"] = "outlook" if mailbox.provider == "microsoft" else "gmail"
    # The thread's deal first; else ``log_email``'s own default (the account's only open deal).
    if deal_id := thread_open_deal(session, org.id, message.thread_id or None):
        item["opportunity_id"] = deal_id
    cutoff = privacy.retention_cutoff(org, now)
    if cutoff is not None and message.sent_at and datetime.fromisoformat(message.sent_at) < cutoff:
        item.pop("body_html", None)
        item.pop("body_text", None)
    try:
        with session.begin_nested():
            for address in new_contacts:
                create_contact(session, owner, {"name": name_from_address(address), "email": address})
            activity, created = log_email(session, owner, item, now=now)
    except DomainError as refused:
        return Outcome(None, refused.message)
    if created:
        _record(
            session, mailbox, activity, reason + (f"; {len(new_contacts)} new contact(s)" if new_contacts else ""), now
        )
        notices.after_capture(session, org, activity, now)  # warned before read
    return Outcome(activity, reason, created)


def _logged_as_sent(session: Session, owner: User, message: GmailMessage) -> Activity | None:
    """The rep's mail logged as Outlook sent it (under the add-in's key, before it had an id),
    found in Sent Items by its subject, recipients and time: it takes the message's id, and
    nothing more is logged."""
    if not message.sent_at:
        return None
    sent_at = datetime.fromisoformat(message.sent_at)
    candidates = session.scalars(
        select(Activity)
        .where(
            Activity.organization_id == owner.organization_id,
            Activity.owner_id == owner.id,
            Activity.external_id.startswith(SENDING, autoescape=True),
            Activity.subject == (message.subject or None),
            Activity.occurred_at.between(sent_at - SENT_WINDOW, sent_at + SENT_WINDOW),
        )
        .order_by(Activity.id)
    )
    recipients = set(message.to)  # the same subject to someone else is another mail
    candidate = next(
        (a for a in candidates if {p.address for p in a.participants if p.role == "to"} == recipients), None
    )
    if candidate is None:
        return None
    before = {"external_id": candidate.external_id}
    candidate.external_id = message.internet_message_id
    session.flush()
    record_event(session, owner, "update", candidate, before=before, after={"external_id": candidate.external_id})
    return candidate


def _record(
    session: Session,
    mailbox: Mailbox,
    activity: Activity,
    reason: str,
    now: datetime,
    provider_id: str | None = None,
    online_link: str | None = None,
) -> None:
    session.add(
        Capture(
            organization_id=mailbox.organization_id,
            mailbox_id=mailbox.id,
            activity_id=activity.id,
            provider_id=provider_id,
            online_link=online_link or None,
            reason=reason[:300],
            captured_at=now,
        )
    )
    mailbox.captured += 1


def capture_event(session: Session, mailbox: Mailbox, event: Event, now: datetime) -> Outcome:
    owner = mailbox.user
    org = owner.organization
    if not event.uid:  # Graph's delta names a removed event by its id alone
        captured = session.scalar(
            select(Capture).where(Capture.mailbox_id == mailbox.id, Capture.provider_id == event.provider_id)
        )
        existing = session.get(Activity, captured.activity_id) if captured else None
        if existing is None:
            return Outcome(None, "a removed event never captured")
        return _update_meeting(session, owner, existing, {"outcome": "cancelled"})
    existing = activity_by_external_id(session, org.id, MEETING_ID + event.uid)
    if existing is not None:
        if existing.deleted_at is not None:
            return Outcome(existing, "taken back before")
        return _update_meeting(session, owner, existing, _meeting_values(event, now))
    if event.cancelled:
        return Outcome(None, "cancelled before it was captured")
    outside = _outside(
        org.domains or [], owner, [*event.attendees, event.organizer] if event.organizer else event.attendees
    )
    outside = [a for a in outside if a]
    if not outside:
        return Outcome(None, "no attendee from outside the organization")
    reason, _ = why_taken(session, owner, outside)
    if reason is None:
        return Outcome(None, "no contact or account of the organization attends")
    data = {
        "event_id": event.uid,
        "subject": event.subject,
        "start": event.start.isoformat(),
        "end": event.end.isoformat(),
        "attendees": outside,
        "body_text": _agenda(event) or None,
        "source": "outlook" if mailbox.provider == "microsoft" else "gmail",
    }
    try:
        with session.begin_nested():
            activity, created = log_meeting(
                session,
                owner,
                {k: v for k, v in data.items() if v is not None},
                now=now,
                id_prefix=MEETING_ID,
                private=event.private,
            )
    except DomainError as refused:
        return Outcome(None, refused.message)
    if created:
        _record(session, mailbox, activity, reason, now, event.provider_id, event.online_link)
    return Outcome(activity, reason, created)


def _agenda(event: Event) -> str:
    lines = [
        f"Where: {event.location}" if event.location else "",
        f"Join: {event.online_link}" if event.online_link else "",
    ]
    return "\n".join([line for line in lines if line] + ([event.agenda] if event.agenda else [])).strip()


def _meeting_values(event: Event, now: datetime) -> dict[str, object]:
    if event.cancelled:
        return {"outcome": "cancelled"}
    return {
        "occurred_at": event.start,
        "duration_minutes": min(int((event.end - event.start).total_seconds() // 60), 24 * 60),
        "subject": event.subject or None,
        "outcome": "held" if event.end <= now else None,
    }


def _update_meeting(session: Session, owner: User, activity: Activity, values: dict[str, object]) -> Outcome:
    """A moved or cancelled event: the same activity changed, counted again, audited."""
    changed = {k: v for k, v in values.items() if getattr(activity, k) != v}
    if activity.outcome == "cancelled" and "outcome" in changed:
        changed.pop("outcome")  # cancelled stays cancelled: a rescheduled one is a new invitation
    if not changed:
        return Outcome(activity, "unchanged")
    before = {k: _plain(getattr(activity, k)) for k in changed}
    change_counted(session, owner.organization, activity, changed)
    record_event(session, owner, "update", activity, before=before, after={k: _plain(v) for k, v in changed.items()})
    return Outcome(activity, "cancelled" if changed.get("outcome") == "cancelled" else "moved")


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def settle_meetings(session: Session, mailbox: Mailbox, now: datetime) -> int:
    """Captured meetings that have ended since, uncancelled: held now."""
    planned = session.scalars(
        select(Activity)
        .join(Capture, Capture.activity_id == Activity.id)
        .where(
            Capture.mailbox_id == mailbox.id,
            Activity.type == "meeting",
            Activity.outcome.is_(None),
            Activity.deleted_at.is_(None),
            Activity.occurred_at <= now,
        )
    ).all()
    held = 0
    for meeting in planned:
        if meeting.occurred_at + timedelta(minutes=meeting.duration_minutes or 0) <= now:
            _update_meeting(session, mailbox.user, meeting, {"outcome": "held"})
            held += 1
    return held
