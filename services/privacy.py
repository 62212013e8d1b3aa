"""Privacy: what never enters the store (PRODUCT.md, "Privacy").

**Internal mail** (everyone on it on the organization's own domains) is logged only where the
organization allows it (its ``log_internal_mail`` setting).

**Block lists.** An organization-wide list, kept by admins, and each rep's own list, of
addresses ("ceo@acme.com") and whole domains ("lawfirm.com", which covers its subdomains too).
Mail with a participant on either list (the organization's, or the rep's own) is never logged,
from any path: ``services.activities`` asks ``blocked`` before it writes anything, and its
refusal never names the address, so no message or log line carries it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from services.access import get_scoped, require_role
from services.audit import record_event, snapshot
from services.errors import DomainError, Forbidden
from services.models import ADDRESS_LENGTH, BlockEntry, Organization, User
from services.text import domain_of, is_valid_address, normalise_address

BLOCKED_MESSAGE = "This mail has a participant on a block list, so it is not logged."
INTERNAL_MESSAGE = "This is internal mail: your organization does not log it."

# A domain as mail uses it: dot-separated labels of letters, digits and inner hyphens (an IDN in
# its xn-- form), a top-level label of letters, 253 characters at most.
_DOMAIN = re.compile(r"^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
_ENTRY_FIELDS = ("owner_id", "kind", "value")


@dataclass(frozen=True)
class BlockLists:
    organization: list[BlockEntry]
    own: list[BlockEntry]


def is_internal(organization: Organization, addresses: Iterable[str]) -> bool:
    """Whether everyone on a mail is on the organization's own domains."""
    everyone = {normalise_address(a or "") for a in addresses} - {""}
    own = set(organization.domains or [])
    return bool(own and everyone) and all(domain_of(a) in own for a in everyone)


def parse_entry(text: str | None) -> tuple[str, str]:
    """What was typed as ``(kind, value)``: an address, or a domain ("acme.com" or "@acme.com");
    else a DomainError that says what is wrong, without echoing it back."""
    value = normalise_address(text or "")
    if not value:
        raise DomainError("Type an address or a domain to block.", {"value": ["Required."]})
    if len(value) > ADDRESS_LENGTH:
        raise DomainError("That is too long for an address or a domain.", {"value": [f"At most {ADDRESS_LENGTH} characters."]})
    if value.startswith("@") and value.count("@") == 1:
        value = value[1:]
    if "@" in value:
        if not is_valid_address(value) or not _DOMAIN.match(value.rpartition("@")[2]):
            raise DomainError("That is not an e-mail address: write it as name@example.com, or a whole domain as example.com.",
                              {"value": ["Not an e-mail address."]})
        return "address", value
    if not _DOMAIN.match(value):
        raise DomainError("That is not a domain: write it as example.com, or an address as name@example.com.",
                          {"value": ["Not a domain."]})
    return "domain", value


def block_lists(session: Session, actor: User) -> BlockLists:
    """The organization's list and the actor's own, each in order."""
    entries = session.scalars(
        select(BlockEntry)
        .where(BlockEntry.organization_id == actor.organization_id, or_(BlockEntry.owner_id.is_(None), BlockEntry.owner_id == actor.id))
        .order_by(BlockEntry.value, BlockEntry.id)
    ).all()
    return BlockLists([e for e in entries if e.owner_id is None], [e for e in entries if e.owner_id is not None])


def add_entry(session: Session, actor: User, text: str | None, *, organization_wide: bool) -> BlockEntry:
    """Block an address or a domain: on the organization's list (admins only) or the actor's own.
    Blocking what is already on that list changes nothing."""
    if organization_wide:
        require_role(actor, "admin")
    kind, value = parse_entry(text)
    owner_id = None if organization_wide else actor.id
    existing = session.scalar(select(BlockEntry).where(
        BlockEntry.organization_id == actor.organization_id, BlockEntry.value == value,
        BlockEntry.owner_id.is_(None) if owner_id is None else BlockEntry.owner_id == owner_id))
    if existing is not None:
        return existing
    entry = BlockEntry(organization_id=actor.organization_id, owner_id=owner_id, kind=kind, value=value)
    session.add(entry)
    session.flush()
    record_event(session, actor, "block", entry, after=snapshot(entry, _ENTRY_FIELDS))
    return entry


def remove_entry(session: Session, actor: User, entry_id: int) -> None:
    """Take an entry off its list: the organization's (admins only) or the actor's own."""
    entry = get_scoped(session, actor, BlockEntry, entry_id, "block list entry")
    if entry.owner_id is None:
        require_role(actor, "admin")
    elif entry.owner_id != actor.id:
        raise Forbidden()
    record_event(session, actor, "unblock", entry, before=snapshot(entry, _ENTRY_FIELDS))
    session.delete(entry)
    session.flush()


def blocked(session: Session, actor: User, addresses: Iterable[str]) -> bool:
    """Whether any of these addresses is blocked for the actor: on the organization's list or
    the actor's own, itself or by its domain or a parent domain of it."""
    candidates: set[str] = set()
    for address in addresses:
        address = normalise_address(address or "")
        if not address:
            continue
        candidates.add(address)
        labels = address.rpartition("@")[2].split(".")
        candidates.update(".".join(labels[n:]) for n in range(len(labels) - 1))
    if not candidates:
        return False
    return session.scalar(
        select(BlockEntry.id).where(
            BlockEntry.organization_id == actor.organization_id, BlockEntry.value.in_(candidates),
            or_(BlockEntry.owner_id.is_(None), BlockEntry.owner_id == actor.id),
        ).limit(1)
    ) is not None


def refuse_blocked(session: Session, actor: User, addresses: Iterable[str]) -> None:
    """Refuse, before anything is written, mail with a blocked participant."""
    if blocked(session, actor, addresses):
        raise DomainError(BLOCKED_MESSAGE)
