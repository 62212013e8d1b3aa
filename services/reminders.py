"""Follow-up reminders by e-mail, sent by a scheduled job (``flask --app wsgi reminders send``).

A follow-up's reminder time is its ``reminder_at``, or its due time when none was set. Each
run sends every reminder whose time has come and that was not sent yet, one message to the
follow-up's owner, and marks it sent (``reminded_at``) in its own transaction: a run that stops
half-way sends the rest next time, and none twice. A follow-up done or deleted before its time
sends nothing. Sending is given as a function (SMTP in production, a local SMTP server in the
tests), so this module knows no network.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.models import Account, Contact, FollowUp, Opportunity, Organization, User, live
from services.types import as_utc, in_zone

BATCH = 500  # reminders read per run at most; the next run takes the rest


@dataclass(frozen=True)
class Reminder:
    follow_up_id: int
    title: str
    due_at: datetime
    owner_email: str
    owner_name: str
    time_zone: str  # the zone it was set in (the rep's mailbox's), else the organization's
    contact_name: str | None
    account_id: int | None = None
    account_name: str | None = None
    deal_name: str | None = None


_DUE = (
    select(
        FollowUp.id,
        FollowUp.title,
        FollowUp.due_at,
        User.email,
        User.name,
        func.coalesce(FollowUp.time_zone, Organization.time_zone),
        Contact.name,
        Account.id,
        Account.name,
        Opportunity.name,
    )
    .join(User, User.id == FollowUp.owner_id)
    .join(Organization, Organization.id == FollowUp.organization_id)
    .outerjoin(Contact, Contact.id == FollowUp.contact_id)
    .outerjoin(Opportunity, Opportunity.id == FollowUp.opportunity_id)
    # The follow-up's account, else its deal's, else its contact's.
    .outerjoin(Account, Account.id == func.coalesce(FollowUp.account_id, Opportunity.account_id, Contact.account_id))
    .where(FollowUp.done_at.is_(None), live(FollowUp), FollowUp.reminded_at.is_(None), User.is_active.is_(True))
    .order_by(func.coalesce(FollowUp.reminder_at, FollowUp.due_at), FollowUp.id)
    .limit(BATCH)
)


def due_reminders(session: Session, now: datetime) -> list[Reminder]:
    """The reminders whose time has come by ``now`` and that were not sent yet, soonest first."""
    rows = session.execute(_DUE.where(func.coalesce(FollowUp.reminder_at, FollowUp.due_at) <= now))
    return [Reminder(row[0], row[1], as_utc(row[2]), *row[3:]) for row in rows]


def reminder_message(reminder: Reminder, sender: str, base_url: str = "") -> EmailMessage:
    """The reminder: what, with whom and about which account and deal, due when in the zone it
    was set in (named), and a link to the account's timeline where the server's address is known."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = reminder.owner_email
    about = [part for part in (reminder.contact_name, reminder.account_name) if part]
    message["Subject"] = (f"Follow-up: {reminder.title}" + (f" ({', '.join(about)})" if about else ""))[:200]
    lines = [
        f"Hello {reminder.owner_name},",
        "",
        f"Your follow-up is due {in_zone(reminder.due_at, reminder.time_zone)} ({reminder.time_zone}):",
        "",
        f"    {reminder.title}",
        "",
    ]
    if reminder.contact_name:
        lines.append(f"With: {reminder.contact_name}")
    if reminder.account_name:
        lines.append(f"Account: {reminder.account_name}")
    if reminder.deal_name:
        lines.append(f"Deal: {reminder.deal_name}")
    if base_url and reminder.account_id:
        lines += ["", f"Open it: {base_url.rstrip('/')}/pane/accounts/{reminder.account_id}/timeline"]
    message.set_content("\n".join(lines + ["", "Inbox CRM", ""]))
    return message


def send_reminders(
    session: Session, now: datetime, send: Callable[[EmailMessage], None], sender: str, base_url: str = ""
) -> tuple[int, int]:
    """Send the due reminders; returns (sent, failed). Each one sent is marked at once and
    committed; one that fails to send stays unmarked for the next run."""
    sent = failed = 0
    for reminder in due_reminders(session, now):
        try:
            send(reminder_message(reminder, sender, base_url))
        except OSError:  # smtplib's errors are OSErrors: the server down, refused, timed out
            failed += 1
            continue
        follow_up = session.get(FollowUp, reminder.follow_up_id)
        follow_up.reminded_at = now
        session.commit()
        sent += 1
    return sent, failed
