"""Privacy: what never enters the store (PRODUCT.md, "Privacy").

**Internal mail** (everyone on it on the organization's own domains) is logged only where the
organization allows it (its ``log_internal_mail`` setting).

**Block lists.** An organization-wide list, kept by admins, and each rep's own list, of
addresses ("ceo@acme.com") and whole domains ("lawfirm.com", which covers its subdomains too).
Mail with a participant on either list (the organization's, or the rep's own) is never logged,
from any path: ``services.mail.activities`` asks ``blocked`` before it writes anything, and its
refusal never names the address, so no message or log line carries it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import JSON, Engine, String, Text, case, cast, delete, false, func, or_, select, text, union, update
from sqlalchemy.orm import Session

from services import lexicon, search_index
from services.integration import sync
from services.access import get_scoped, require_role
from services.audit import record_event, snapshot
from services.errors import DomainError, Forbidden
from services.models import (
    ADDRESS_LENGTH,
    Activity,
    ActivityParticipant,
    AuditEvent,
    Base,
    BlockEntry,
    Contact,
    ContactEmail,
    ContactPhone,
    FollowUp,
    ImportRun,
    Lead,
    LeadArrival,
    Opportunity,
    Organization,
    SendMark,
    Transcript,
    User,
    live,
)
from services.periods import add_months, local_midnight
from services.mail.text import domain_of, is_valid_address, normalise_address
from services.types import utcnow

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
        raise DomainError(
            "That is too long for an address or a domain.", {"value": [f"At most {ADDRESS_LENGTH} characters."]}
        )
    if value.startswith("@") and value.count("@") == 1:
        value = value[1:]
    if "@" in value:
        if not is_valid_address(value) or not _DOMAIN.match(value.rpartition("@")[2]):
            raise DomainError(
                "That is not an e-mail address: write it as name@example.com, or a whole domain as example.com.",
                {"value": ["Not an e-mail address."]},
            )
        return "address", value
    if not _DOMAIN.match(value):
        raise DomainError(
            "That is not a domain: write it as example.com, or an address as name@example.com.",
            {"value": ["Not a domain."]},
        )
    return "domain", value


def block_lists(session: Session, actor: User) -> BlockLists:
    """The organization's list and the actor's own, each in order."""
    entries = session.scalars(
        select(BlockEntry)
        .where(
            BlockEntry.organization_id == actor.organization_id,
            or_(BlockEntry.owner_id.is_(None), BlockEntry.owner_id == actor.id),
        )
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
    existing = session.scalar(
        select(BlockEntry).where(
            BlockEntry.organization_id == actor.organization_id,
            BlockEntry.value == value,
            BlockEntry.owner_id.is_(None) if owner_id is None else BlockEntry.owner_id == owner_id,
        )
    )
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
    return (
        session.scalar(
            select(BlockEntry.id)
            .where(
                BlockEntry.organization_id == actor.organization_id,
                BlockEntry.value.in_(candidates),
                or_(BlockEntry.owner_id.is_(None), BlockEntry.owner_id == actor.id),
            )
            .limit(1)
        )
        is not None
    )


def refuse_blocked(session: Session, actor: User, addresses: Iterable[str]) -> None:
    """Refuse, before anything is written, mail with a blocked participant."""
    if blocked(session, actor, addresses):
        raise DomainError(BLOCKED_MESSAGE)


# -- a person's rights: erasure and export; retention of mail bodies --------------------------------

ERASED = "[erased]"


def keyed_hash(secret: str, address: str) -> str:
    """What the audit trail keeps of an erased address: a keyed hash, so that a second request
    for the same address can be recognised and the address cannot be read back."""
    return hmac.new(secret.encode(), normalise_address(address).encode(), hashlib.sha256).hexdigest()


def _person(address: str | None) -> str:
    address = normalise_address(address or "")
    if not is_valid_address(address):
        raise DomainError(
            "That is not an e-mail address: write it as name@example.com.", {"address": ["Not an e-mail address."]}
        )
    return address


def _their_contacts(org_id: int, address: str) -> Any:
    """The ids of the organization's contacts with this address."""
    return select(ContactEmail.contact_id).where(
        ContactEmail.organization_id == org_id, func.lower(ContactEmail.address) == address
    )


def _with_them(org_id: int, address: str) -> Any:
    """The ids of the organization's activities this address took part in."""
    return select(ActivityParticipant.activity_id).where(
        ActivityParticipant.organization_id == org_id, func.lower(ActivityParticipant.address) == address
    )


def _note(
    session: Session, organization_id: int, actor: User | None, action: str, record_type: str, after: dict[str, Any]
) -> None:
    """An audit event about no one record (an erasure, an export, a retention run)."""
    session.add(
        AuditEvent(
            organization_id=organization_id,
            actor_id=actor.id if actor else None,
            action=action,
            record_type=record_type,
            record_id=0,
            before=None,
            after=after,
        )
    )


def _scrubbed(value: Any, pattern: re.Pattern[str]) -> Any:
    """``value`` (text, or JSON of lists and objects) with every match of ``pattern`` replaced."""
    if isinstance(value, str):
        return pattern.sub(ERASED, value)
    if isinstance(value, list):
        return [_scrubbed(item, pattern) for item in value]
    if isinstance(value, dict):
        return {_scrubbed(key, pattern): _scrubbed(item, pattern) for key, item in value.items()}
    return value


def _mentions(column: Any, address: str) -> Any:
    """``column`` (text, or JSON read as text) holds ``address`` (lower case), whatever the case."""
    return func.lower(cast(column, Text)).contains(address, autoescape=True)


@dataclass(frozen=True)
class Erasure:
    organization_id: int
    contacts: int
    activities: int  # whose subject and text went (activities with the person, or naming their address)
    participants: int
    leads: int
    other_records: (
        int  # every other row that held the address, a name or a phone of theirs (accounts, deals, audit events, ...)
    )

    def counts(self) -> dict[str, int]:
        return {
            "contacts": self.contacts,
            "activities": self.activities,
            "participants": self.participants,
            "leads": self.leads,
            "other_records": self.other_records,
        }


def holders_of(address: str | None) -> Any:
    """The ids of the organizations that hold this address anywhere a person is kept: a contact,
    a lead, an intake arrival, a mail's participants (what the command erases without ``--org``)."""
    address = normalise_address(address or "")
    return union(
        *(
            select(model.organization_id).where(func.lower(column) == address)
            for model, column in (
                (ContactEmail, ContactEmail.address),
                (Lead, Lead.email),
                (LeadArrival, LeadArrival.email),
                (ActivityParticipant, ActivityParticipant.address),
            )
        )
    )


# Not scrubbed by a person's erasure: the organization's own text (its people, stages, keys),
# and who other people are (a namesake's contact, lead or form post is somebody else: the
# person's own are deleted or blanked whole first). Every other text column is, what other
# people wrote included (a form's message that names them).
_NOT_SCRUBBED = frozenset(
    {
        "organizations",
        "users",
        "teams",
        "stages",
        "note_checklists",
        "lexicon_words",
        "lexicon_evidence",
        "tombstones",
        "user_identities",
        "api_tokens",
        "webhook_endpoints",
        "lead_sources",
        "change_events",
        "contacts",
        "contact_emails",
        "contact_phones",
        "leads",
    }
)
_OTHERS_IDENTITY = frozenset(
    {("lead_arrivals", "name"), ("lead_arrivals", "email"), ("lead_arrivals", "phone"), ("lead_arrivals", "company")}
)
_MIN_NAME = 3  # a name shorter than this is too common a string to scrub from every text


def _scrub_everywhere(session: Session, org_id: int, needles: list[str]) -> int:
    """Every copy of the person's address, names and phones in every text (and JSON) column of
    the organization's rows, replaced by ``ERASED``: a name the pane made from the address
    (an account's, a deal's), an API answer kept for replays, an audit record, a note that
    names them. Synced records changed so get a new version and their events. Returns how many
    rows changed."""
    pattern = re.compile("|".join(re.escape(n) for n in sorted(needles, key=len, reverse=True)), re.IGNORECASE)
    models = {mapper.local_table: mapper.class_ for mapper in Base.registry.mappers}
    changed = 0
    for table in Base.metadata.sorted_tables:
        if table.name in _NOT_SCRUBBED or "organization_id" not in table.c or "id" not in table.c:
            continue
        columns = [
            c
            for c in table.c
            if isinstance(c.type, (String, Text, JSON))
            and not c.foreign_keys
            and not c.primary_key
            and (table.name, c.name) not in _OTHERS_IDENTITY
        ]
        if not columns:
            continue
        found = session.execute(
            select(table.c.id, *columns).where(
                table.c.organization_id == org_id, or_(*(_mentions(c, n.lower()) for c in columns for n in needles))
            )
        ).all()
        ids = []
        for row in found:
            values = {c.key: _scrubbed(row._mapping[c], pattern) for c in columns}
            values = {key: value for key, value in values.items() if value != row._mapping[table.c[key]]}
            if values:
                session.execute(
                    update(table)
                    .where(table.c.id == row.id)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                ids.append(row.id)
        if models.get(table) in sync.RECORD_TYPE:
            sync.rows_changed(session, org_id, models[table], ids)
        changed += len(ids)
    return changed


def _drop_import_files(session: Session, org_id: int) -> int:
    """The files the organization's imports still keep (drafts, and imports not finished: a day
    at most) are bytes no scrub reads, in any encoding: an erasure drops them all, and an import
    that has not finished stops, saying why."""
    unfinished = ImportRun.status.in_(("draft", "queued", "running"))
    return session.execute(
        update(ImportRun)
        .where(ImportRun.organization_id == org_id, ImportRun.content.is_not(None))
        .values(
            content=None,
            status=case((unfinished, "failed"), else_=ImportRun.status),
            message=case(
                (unfinished, "Its file was dropped when a person's data was erased: upload it again."),
                else_=ImportRun.message,
            ),
        )
        .execution_options(synchronize_session=False)
    ).rowcount


def erase_person(
    session: Session, organization: Organization, address: str | None, *, secret: str, actor: User | None = None
) -> Erasure:
    """Erase a person from one organization (their right to be forgotten): their contact or lead
    and every copy of their address, names and phone numbers go, and the subject and text of
    every activity with them; the activities stay, anonymous, so every figure of a past period
    stands. Every synced record this changes gets a new version and its event; those deleted
    outright, a tombstone. The audit trail keeps that it happened (who, when, how many records,
    a keyed hash of the address), never the address. The caller commits, then calls
    ``after_erasure``."""
    if actor is not None:
        require_role(actor, "admin")
    address = _person(address)
    org_id = organization.id
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA secure_delete = ON"))  # freed pages are overwritten, not left holding the address
    contact_ids = list(session.scalars(_their_contacts(org_id, address)))
    lead_ids = list(
        session.scalars(select(Lead.id).where(Lead.organization_id == org_id, func.lower(Lead.email) == address))
    )
    lead_ids += session.scalars(
        select(LeadArrival.lead_id).where(
            LeadArrival.organization_id == org_id, func.lower(LeadArrival.email) == address
        )
    )
    # Who they are, as the store wrote them: their names and numbers, wherever else they were copied.
    names = {n for n in session.scalars(select(Contact.name).where(Contact.id.in_(contact_ids or [0])))}
    names |= set(session.scalars(select(Lead.name).where(Lead.id.in_(lead_ids or [0]))))
    phones = set(session.scalars(select(ContactPhone.number).where(ContactPhone.contact_id.in_(contact_ids or [0]))))
    phones |= set(session.scalars(select(Lead.phone).where(Lead.id.in_(lead_ids or [0]))))
    for name, phone in session.execute(
        select(LeadArrival.name, LeadArrival.phone).where(
            LeadArrival.organization_id == org_id, LeadArrival.lead_id.in_(lead_ids or [0])
        )
    ):
        names.add(name)
        phones.add(phone)
    needles = (
        [address]
        + sorted({n.strip() for n in names if n and len(n.strip()) >= _MIN_NAME and n.strip() != ERASED})
        + sorted({p.strip() for p in phones if p and len(p.strip()) >= 5})
    )
    theirs = Activity.id.in_(_with_them(org_id, address)) | (
        Activity.contact_id.in_(contact_ids) if contact_ids else false()
    )
    with_them = (Activity.organization_id == org_id) & (
        theirs
        | _mentions(Activity.subject, address)
        | _mentions(Activity.body_text, address)
        | _mentions(Activity.body_html, address)
    )
    activity_ids = list(session.scalars(select(Activity.id).where(with_them)))
    # The words their text taught the lexicon go with it (``services.lexicon``).
    lexicon.forget_activities(session, organization, activity_ids)
    cleared = sync.rows_changed(
        session, org_id, Activity, activity_ids, {"subject": None, "body_text": None, "body_html": None}
    )
    participants = session.execute(
        delete(ActivityParticipant)
        .where(ActivityParticipant.organization_id == org_id, func.lower(ActivityParticipant.address) == address)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.execute(
        delete(LeadArrival)
        .where(LeadArrival.organization_id == org_id, LeadArrival.lead_id.in_(lead_ids or [0]))
        .execution_options(synchronize_session=False)
    )
    leads = sync.rows_changed(
        session, org_id, Lead, lead_ids, {"email": None, "name": ERASED, "phone": None, "company": None}
    )
    other = session.execute(
        delete(BlockEntry)
        .where(BlockEntry.organization_id == org_id, BlockEntry.value == address)
        .execution_options(synchronize_session=False)
    ).rowcount
    # A Gmail draft marked "Log when sent" to them is forgotten, used or not.
    other += session.execute(
        delete(SendMark)
        .where(SendMark.organization_id == org_id, _mentions(SendMark.recipients, address))
        .execution_options(synchronize_session=False)
    ).rowcount
    # The audit trail's records of the contacts go whole.
    for event in session.scalars(
        select(AuditEvent).where(
            AuditEvent.organization_id == org_id,
            AuditEvent.record_type == "contacts",
            AuditEvent.record_id.in_(contact_ids or [0]),
        )
    ):
        event.before = {"erased": True} if event.before is not None else None
        event.after = {"erased": True} if event.after is not None else None
        other += 1
    session.flush()
    # Their deals and follow-ups let go of the contact (each with a new version), then the
    # contact goes, its addresses and phones with it (ON DELETE CASCADE); sync clients get tombstones.
    sync.release(session, org_id, Contact, contact_ids)
    contacts = (
        session.execute(
            delete(Contact)
            .where(Contact.organization_id == org_id, Contact.id.in_(contact_ids))
            .execution_options(synchronize_session=False)
        ).rowcount
        if contact_ids
        else 0
    )
    sync.tombstones_for(session, org_id, "contacts", contact_ids)
    # Every other copy of the address, their names and numbers: accounts and deals named after
    # them, kept API answers, audit records, follow-up titles, notes.
    other += _scrub_everywhere(session, org_id, needles)
    other += _drop_import_files(session, org_id)
    # The search's indexes forget them too: their trigrams leave the index's pages (SQLite).
    search_index.optimize(session.connection())
    erasure = Erasure(org_id, contacts, cleared, participants, leads, other)
    _note(session, org_id, actor, "erase", "people", {"address_hash": keyed_hash(secret, address), **erasure.counts()})
    session.flush()
    session.expire_all()
    return erasure


def after_erasure(engine: Engine) -> None:
    """After the erasure's commit, on SQLite: the write-ahead log's copies of the old pages go
    too (checkpointed into the file, whose freed pages ``secure_delete`` overwrote, and emptied).
    Outside any transaction, on a connection of its own."""
    if engine.dialect.name != "sqlite":
        return
    connection = engine.raw_connection()
    try:
        connection.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def person_export(session: Session, actor: User, address: str | None) -> dict[str, Any]:
    """Everything the actor's organization stores about one person (their right of access), as
    plain JSON: contact, accounts, activities with them (notes included), follow-ups, deals they
    are on, leads. Admins only."""
    require_role(actor, "admin")
    address = _person(address)
    org_id = actor.organization_id
    contacts = session.scalars(
        select(Contact)
        .where(Contact.organization_id == org_id, Contact.id.in_(_their_contacts(org_id, address)))
        .order_by(Contact.id)
    ).all()
    contact_ids = [c.id for c in contacts]
    activities = session.scalars(
        select(Activity)
        .where(
            Activity.organization_id == org_id,
            live(Activity),
            or_(Activity.id.in_(_with_them(org_id, address)), Activity.contact_id.in_(contact_ids or [0])),
        )
        .order_by(Activity.occurred_at, Activity.id)
    ).all()
    follow_ups = session.scalars(
        select(FollowUp)
        .where(FollowUp.organization_id == org_id, live(FollowUp), FollowUp.contact_id.in_(contact_ids or [0]))
        .order_by(FollowUp.due_at)
    ).all()
    deals = session.scalars(
        select(Opportunity)
        .where(
            Opportunity.organization_id == org_id,
            live(Opportunity),
            or_(
                Opportunity.contact_id.in_(contact_ids or [0]),
                Opportunity.id.in_([a.opportunity_id for a in activities if a.opportunity_id] or [0]),
            ),
        )
        .order_by(Opportunity.id)
    ).all()
    leads = session.scalars(select(Lead).where(Lead.organization_id == org_id, func.lower(Lead.email) == address)).all()
    arrivals = session.scalars(
        select(LeadArrival)
        .where(
            LeadArrival.organization_id == org_id,
            or_(func.lower(LeadArrival.email) == address, LeadArrival.lead_id.in_([lead.id for lead in leads] or [0])),
        )
        .order_by(LeadArrival.received_at)
    ).all()
    accounts = {c.account.id: c.account for c in contacts if c.account is not None}
    iso = lambda value: value.isoformat() if value is not None else None  # noqa: E731
    return {
        "address": address,
        "exported_at": iso(utcnow()),
        "contacts": [
            {
                "id": c.id,
                "name": c.name,
                "title": c.title,
                "addresses": [e.address for e in c.emails],
                "account_id": c.account_id,
                "created_at": iso(c.created_at),
            }
            for c in contacts
        ],
        "accounts": [{"id": a.id, "name": a.name, "domains": [d.domain for d in a.domains]} for a in accounts.values()],
        "activities": [
            {
                "id": a.id,
                "type": a.type,
                "direction": a.direction,
                "occurred_at": iso(a.occurred_at),
                "subject": a.subject,
                "body_text": a.body_text,
                "outcome": a.outcome,
                "duration_minutes": a.duration_minutes,
                "deal_id": a.opportunity_id,
                "participants": [{"address": p.address, "role": p.role} for p in a.participants],
            }
            for a in activities
        ],
        "follow_ups": [
            {"id": f.id, "title": f.title, "due_at": iso(f.due_at), "done_at": iso(f.done_at)} for f in follow_ups
        ],
        "deals": [
            {
                "id": d.id,
                "name": d.name,
                "status": d.status,
                "amount": str(d.amount) if d.amount is not None else None,
                "currency": d.currency,
            }
            for d in deals
        ],
        "leads": [
            {"id": lead.id, "name": lead.name, "email": lead.email, "phone": lead.phone, "source": lead.source}
            for lead in leads
        ],
        "lead_arrivals": [
            {
                "lead_id": a.lead_id,
                "received_at": iso(a.received_at),
                "name": a.name,
                "email": a.email,
                "phone": a.phone,
                "company": a.company,
                "message": a.message,
            }
            for a in arrivals
        ],
    }


def record_export(session: Session, actor: User, address: str, secret: str) -> None:
    """The audit trail's note of an export: who, when, a keyed hash of whose."""
    _note(session, actor.organization_id, actor, "export", "people", {"address_hash": keyed_hash(secret, address)})


def retention_cutoff(organization: Organization, now: datetime) -> datetime | None:
    """Mail sent before this keeps no body (``body_retention_months``); None: bodies are kept."""
    months = organization.setting("body_retention_months")
    return local_midnight(add_months(now.date(), -int(months)), "UTC") if months else None


def remove_old_bodies(session: Session, organization: Organization, now: datetime | None = None) -> int:
    """The organization's retention (``body_retention_months``): the text of mail older than
    that goes; the activity and its metadata stay. Returns how many bodies went."""
    cutoff = retention_cutoff(organization, now or utcnow())
    if cutoff is None:
        return 0
    old = session.scalars(
        select(Activity.id).where(
            Activity.organization_id == organization.id,
            Activity.type == "email",
            Activity.occurred_at < cutoff,
            (Activity.body_text.is_not(None)) | (Activity.body_html.is_not(None)),
        )
    )
    removed = sync.rows_changed(session, organization.id, Activity, list(old), {"body_text": None, "body_html": None})
    # A meeting's transcript is its body: it goes with the same cutoff.
    session.execute(
        delete(Transcript).where(
            Transcript.organization_id == organization.id,
            Transcript.activity_id.in_(
                select(Activity.id).where(Activity.organization_id == organization.id, Activity.occurred_at < cutoff)
            ),
        )
    )
    if removed:
        _note(
            session,
            organization.id,
            None,
            "retention",
            "activities",
            {"bodies_removed": removed, "before": cutoff.isoformat()},
        )
    return removed
