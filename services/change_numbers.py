"""An organization's change number: every transaction that changes its records takes the next
one, once, and every row it changes carries it as its version (``services.integration.sync`` numbers them,
``services.integration.webhooks`` tells them). On the ground floor: the access rules take it first too
(``lock_changes``), and sync and webhooks build on both."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from services.models import Organization

_SEQ = "inboxcrm.sync_seq"


def next_seq(session: Session, organization_id: int) -> int:
    """This transaction's sequence number in the organization: taken once (the counter's row
    then stays locked until the transaction ends), the same for all it changes."""
    taken = session.info.setdefault(_SEQ, {})
    if organization_id not in taken:
        taken[organization_id] = session.execute(
            update(Organization)
            .where(Organization.id == organization_id)
            .values(change_seq=Organization.change_seq + 1)
            .returning(Organization.change_seq)
        ).scalar_one()
    return taken[organization_id]


def forget_taken(session: Session, *_: Any) -> None:
    """A number belongs to one transaction (``services.integration.sync.install`` calls this as one ends).
    A savepoint rolled back may have undone the counter's increment: its number is dropped too,
    and the next change takes a new one (gaps are fine)."""
    session.info.pop(_SEQ, None)


def lock_changes(session: Session, organization_id: int) -> None:
    """Take the organization's change number before locking any record: a writer holds the
    counter's row until it ends, so every writer locks the counter first and rows after, and no
    two wait on each other in a circle."""
    next_seq(session, organization_id)
