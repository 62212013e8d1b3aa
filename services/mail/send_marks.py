"""*Log when sent*, for Gmail: a rep marks a draft, and the mail is logged when they next open
it once sent, by the same rule as Outlook's fallback (``static/js/pane.js``: a marked message
is logged when opened from Sent Items).

Gmail has no send hook, and the add-on's compose event carries no draft id and no subject
(its scopes read the draft's recipients only, ``gmail.addons.current.message.metadata``). So a
mark is the rep and the draft's outside recipients; the first message the rep then opens that
is from them, to exactly those people, sent after the mark was made and within its life, takes
the mark and is logged. A mark is used once; marking the same recipients again is the same mark.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import privacy
from services.errors import DomainError
from services.mail.text import domain_of, is_valid_address, normalise_address
from services.models import Organization, SendMark, User
from services.types import utcnow

LIFE = timedelta(days=3)  # a draft not sent in three days is not waited for
SKEW = timedelta(minutes=5)  # a Date header a little behind the clock that made the mark


def outside_recipients(organization: Organization, addresses: Iterable[str]) -> str:
    """The addresses outside the organization, as a mark keeps them: sorted, comma-separated."""
    own = set(organization.domains or [])
    found = {normalise_address(parseaddr(a or "")[1]) for a in addresses}
    return ",".join(sorted(a for a in found if a and is_valid_address(a) and domain_of(a) not in own))[:2000]


def mark_for_sending(
    session: Session, actor: User, recipients: Iterable[str], *, now: datetime | None = None
) -> SendMark:
    """Mark the draft to these recipients: it is logged when the rep next opens it, sent."""
    now = now or utcnow()
    key = outside_recipients(actor.organization, recipients)
    if not key:
        raise DomainError("Add a recipient outside your organization first: mail among colleagues is not logged.")
    privacy.refuse_blocked(session, actor, key.split(","))
    existing = session.scalar(_open_marks(actor, key, now).limit(1))
    if existing is not None:
        return existing
    mark = SendMark(organization_id=actor.organization_id, user_id=actor.id, recipients=key, created_at=now)
    session.add(mark)
    session.flush()
    return mark


def take_mark(
    session: Session,
    actor: User,
    sender: str,
    recipients: Iterable[str],
    sent_at: datetime | None,
    *,
    now: datetime | None = None,
) -> SendMark | None:
    """The rep's open mark this message answers (their own, to exactly the marked people, sent
    after the mark was made), locked and marked used; None when there is none."""
    now = now or utcnow()
    if normalise_address(parseaddr(sender or "")[1]) != actor.email:
        return None
    key = outside_recipients(actor.organization, recipients)
    if not key:
        return None
    query = _open_marks(actor, key, now).where(SendMark.created_at <= (sent_at or now) + SKEW)
    mark = session.scalar(query.limit(1).with_for_update())
    if mark is not None:
        mark.used_at = now
    return mark


def _open_marks(actor: User, key: str, now: datetime):  # noqa: ANN202 (a Select of SendMark)
    return (
        select(SendMark)
        .where(
            SendMark.organization_id == actor.organization_id,
            SendMark.user_id == actor.id,
            SendMark.recipients == key,
            SendMark.used_at.is_(None),
            SendMark.created_at >= now - LIFE,
        )
        .order_by(SendMark.created_at)
    )
