"""The preview mailbox: sample mail items for the signed-in user, built from their own data.

Items have the shape the pane's adapter hands to the backend from Office.js, so the preview
exercises the same code path as Outlook: a known customer, a second contact of a customer,
an unknown sender at a new company, a sender on a public mail domain, an outbound message and
a meeting invite.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from services.models import Contact, Opportunity, User, live
from services.types import utcnow


@dataclass
class MailItem:
    id: str
    item_type: str  # message | appointment
    from_address: str
    from_name: str
    subject: str
    sent_at: str
    body_text: str
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    attendees: list[str] = field(default_factory=list)
    start: str | None = None
    end: str | None = None

    @property
    def internet_message_id(self) -> str:
        return f"<preview-{self.id}@inboxcrm.example>"

    def as_office_item(self) -> dict[str, Any]:
        # Appointments have a calendar id, not a message id (Office.js: item.itemId).
        if self.item_type == "appointment":
            return {**asdict(self), "internet_message_id": "", "event_id": f"preview-{self.id}"}
        return {**asdict(self), "internet_message_id": self.internet_message_id, "event_id": ""}


def sample_mailbox(session: Session, user: User, now: datetime | None = None) -> list[MailItem]:
    now = now or utcnow()
    customers = _customers(session, user)
    items: list[MailItem] = []

    def stamp(hours: int) -> str:
        return (now - timedelta(hours=hours)).isoformat(timespec="seconds")

    if customers:
        first = customers[0]
        items.append(
            MailItem(
                f"{user.id}-known",
                "message",
                first.emails[0].address,
                first.name,
                "Re: rates for next quarter",
                stamp(1),
                f"Hi {user.name.split()[0]},\n\nThanks for the proposal. Can you send the updated rates for the Chicago lane?"
                f"\n\nBest,\n{first.name}",
                to=[user.email],
            )
        )
    if len(customers) > 1:
        second = customers[1]
        items.append(
            MailItem(
                f"{user.id}-colleague",
                "message",
                second.emails[0].address,
                second.name,
                "Delivery schedule",
                stamp(5),
                "Hello,\n\nThe last delivery was two days late. Can we talk about the schedule?",
                to=[user.email],
            )
        )
    items.append(
        MailItem(
            f"{user.id}-unknown",
            "message",
            "priya.natarajan@granite-robotics.example",
            "Priya Natarajan",
            "Looking for a carrier",
            stamp(8),
            "Hello,\n\nWe ship about 40 pallets a week from Denver to Austin and are looking for a new carrier. "
            "Could you send us a quote?\n\nPriya Natarajan\nHead of Logistics, Granite Robotics",
            to=[user.email],
        )
    )
    items.append(
        MailItem(
            f"{user.id}-public",
            "message",
            "tom.baker1987@gmail.com",
            "Tom Baker",
            "Question about a one-off move",
            stamp(20),
            "Hi, I found you online. Do you also take one-off moves of a few pallets?",
            to=[user.email],
        )
    )
    if customers:
        first = customers[0]
        items.append(
            MailItem(
                f"{user.id}-outbound",
                "message",
                user.email,
                user.name,
                "Updated rates attached",
                stamp(26),
                f"Hi {first.name.split()[0]},\n\nPlease find the updated rates attached.\n\nKind regards,\n{user.name}",
                to=[first.emails[0].address],
            )
        )
        attendees = [c.emails[0].address for c in customers[:2]]
        items.append(
            MailItem(
                f"{user.id}-meeting",
                "appointment",
                user.email,
                user.name,
                f"Quarterly review with {first.account.name if first.account else first.name}",
                stamp(30),
                "Agenda: volumes, service levels, next quarter's lanes.",
                to=attendees,
                attendees=attendees,
                start=(now + timedelta(days=1)).isoformat(timespec="minutes"),
                end=(now + timedelta(days=1, hours=1)).isoformat(timespec="minutes"),
            )
        )
    return items


def _customers(session: Session, user: User) -> list[Contact]:
    """Contacts at accounts where the user has open deals; any contacts of theirs otherwise."""
    base = (
        select(Contact)
        .where(Contact.organization_id == user.organization_id, live(Contact), Contact.emails.any())
        .options(selectinload(Contact.emails), selectinload(Contact.account))
        .order_by(Contact.id)
    )
    with_deals = select(Opportunity.account_id).where(
        Opportunity.organization_id == user.organization_id,
        Opportunity.owner_id == user.id,
        Opportunity.status == "open",
    )
    contacts = list(session.scalars(base.where(Contact.account_id.in_(with_deals)).limit(2)))
    if len(contacts) < 2:
        contacts += [c for c in session.scalars(base.limit(2)) if c not in contacts]
    return contacts[:2]


# What arrives in the preview's captured mailbox, in turn: a warm reply, a question, a mail that
# reads badly (a deal's health may fall: its owner is told), a thank-you.
ARRIVALS = (
    ("Re: rates for next quarter", "Thanks, the new rates look great. We are happy to go ahead."),
    ("Pallet counts for March", "Could you confirm the pallet counts for March? We may add a second lane."),
    (
        "Very disappointed",
        "The last three deliveries were late and nobody called us. This is unacceptable; we are looking at other carriers.",
    ),
    ("Thank you", "Thank you for sorting out the schedule so quickly. Much appreciated."),
)


@dataclass
class Arrival:
    sender: str
    subject: str
    body: str


def sample_arrival(session: Session, user: User, turn: int) -> Arrival | None:
    """The ``turn``-th sample mail to arrive in the user's captured mailbox: from one of their
    customers (None when they have none)."""
    customers = _customers(session, user)
    if not customers:
        return None
    subject, body = ARRIVALS[turn % len(ARRIVALS)]
    return Arrival(customers[turn % len(customers)].emails[0].address, subject, body)


def sample_meeting_attendees(session: Session, user: User) -> list[str]:
    return [c.emails[0].address for c in _customers(session, user)]
