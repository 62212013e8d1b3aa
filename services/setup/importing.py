"""Bringing in what a team already has: accounts, contacts, deals, past activities and leads,
from a spreadsheet or another CRM's export.

One engine serves the admin's page (through the worker) and the command
``flask --app wsgi import``:

1. **Columns are mapped** to our fields (``detect_mapping``): by the names our own export and
   HubSpot's, Pipedrive's and Salesforce's exports give them, else by a mapping saved for files
   with the same headers (``ImportMapping``), else on the page.
2. **Every row is planned** before anything is written (``Importer.plan``): it will *create* a
   record, *update* one it matches (only what differs), find it already *unchanged*, *merge*
   into a row above it in the same file, or be *refused*, with the reason (a bad e-mail, an
   unknown owner or stage, a date out of range, an amount that is not a number as the
   organization's locale writes it, a formula in a cell, a blocked or internal address). A dry
   run stops there.
3. **Duplicates are matched**: an account by a domain or its name, a contact by e-mail, a deal by
   its external id (else its name at its account), an activity by its external id or Message-ID,
   a lead by e-mail. So importing the same file twice changes nothing.
4. **Rows are written in chunks** with bulk statements, each chunk its own transaction with its
   progress (``ImportRun.rows_done``): a worker that stops resumes at the next chunk. What each
   chunk made or changed is kept (``ImportChange``), so that the whole import can be undone for
   a day (``undo_import``).
5. **Afterwards**, what the rows touched is recounted, and only that (``_recount_touched``): the
   imported activities are added to the rollups (``services.rollups.add_counted``: the rows of
   their owners' days, months and years read, summed and written back), the latest times of
   the deals and accounts they name recomputed, and those deals' health kept for the day; a
   deal made keeps its stage facts as written.

Imported activities pass the pane's privacy rules: the organization's and the owner's block
lists, internal mail (unless the organization logs it), and body retention.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.orm import Session

from services import latest, notes
from services.health import snapshot
from services.audit import plain, record_event
from services.change_numbers import next_seq
from services.errors import DomainError, Forbidden, NotFound
from services.integration import webhooks
from services.integration.sync import RECORD_TYPE, release, rows_changed, tombstones_for
from services.mail.text import domain_of, is_public_domain, is_valid_address, normalise_address
from services.models import (
    ACTIVITY_TYPES,
    Account,
    AccountDomain,
    Activity,
    BlockEntry,
    Contact,
    ContactEmail,
    ContactPhone,
    ImportChange,
    ImportMapping,
    ImportRun,
    Lead,
    LeadChannel,
    Opportunity,
    Organization,
    Stage,
    StageChange,
    User,
)
from services.numbers import AmountError, parse_amount
from services.rollups import COUNTED, RollupCounter, add_counted
from services.schemas import EARLIEST, LATEST, MAX_AMOUNT
from services.setup.tables import Table, is_formula, read_table
from services.types import as_utc, utcnow

KINDS = ("accounts", "contacts", "deals", "activities", "leads")
ACTIONS = ("create", "update", "merge", "unchanged", "refuse")
CHUNK = 2_000
UNDO_HOURS = 24


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    aliases: tuple[str, ...] = ()
    required: bool = False


def _f(name: str, label: str, *aliases: str, required: bool = False) -> Field:
    return Field(name, label, (name.replace("_", " "), label.lower(), *aliases), required)


OWNER = ("owner", "owner email", "contact owner", "company owner", "deal owner", "account owner", "opportunity owner")
# Our own export's columns first, then HubSpot's, Pipedrive's ("Deal - Title") and Salesforce's.
FIELDS: dict[str, tuple[Field, ...]] = {
    "accounts": (
        _f(
            "name",
            "Name",
            "account name",
            "company name",
            "company",
            "organization name",
            "organization - name",
            "organization",
            required=True,
        ),
        _f("domain", "Domain", "company domain name", "website", "web site", "domains", "organization - website"),
        _f("city", "City", "billing city", "organization - address - city/town", "city/town"),
        _f("owner", "Owner", *OWNER, "organization - owner"),
    ),
    "contacts": (
        _f(
            "email",
            "E-mail",
            "email address",
            "e-mail",
            "person - email",
            "person - email - work",
            "emails",
            required=True,
        ),
        _f("name", "Name", "full name", "contact name", "person - name"),
        _f("first_name", "First name", "person - first name"),
        _f("last_name", "Last name", "person - last name"),
        _f(
            "phone",
            "Phone",
            "phone number",
            "person - phone",
            "person - phone - work",
            "mobile phone number",
            "mobile",
            "phones",
        ),
        _f("title", "Job title", "title", "person - job title"),
        _f(
            "account",
            "Account",
            "account name",
            "company",
            "company name",
            "associated company",
            "person - organization",
            "organization",
        ),
        _f("owner", "Owner", *OWNER, "person - owner"),
    ),
    "deals": (
        _f("external_id", "External id", "record id", "deal id", "deal - id", "opportunity id", "id"),
        _f("name", "Name", "deal name", "deal - title", "opportunity name", "title", required=True),
        _f(
            "account",
            "Account",
            "account name",
            "company",
            "associated company",
            "deal - organization",
            "organization",
            "company name",
            required=True,
        ),
        _f("amount", "Amount", "deal - value", "value"),
        _f("stage", "Stage", "deal stage", "deal - stage", required=True),
        _f("status", "Status", "deal - status"),
        _f("close_date", "Close date", "expected close date", "deal - expected close date"),
        _f(
            "closed_at",
            "Closed",
            "closed at",
            "closed date",
            "deal - won time",
            "deal - lost time",
            "actual close date",
        ),
        _f("owner", "Owner", *OWNER, "deal - owner"),
        _f("loss_reason", "Loss reason", "lost reason", "closed lost reason", "deal - lost reason"),
        _f("created_at", "Created", "create date", "created date", "deal - deal created", "created at"),
        _f("contact_email", "Contact e-mail", "contact email", "person email", "deal - contact person email"),
    ),
    "activities": (
        _f("external_id", "External id", "activity id", "activity - id", "record id", "id"),
        _f("message_id", "Message-ID", "message id", "internet message id", "internetmessageid"),
        _f("type", "Type", "activity type", "activity - type", "task type", "task subtype", required=True),
        _f(
            "occurred_at",
            "Date",
            "occurred at",
            "activity date",
            "activity - due date",
            "due date",
            "date",
            "start date",
            "activity - done time",
            required=True,
        ),
        _f("direction", "Direction", "call direction", "email direction"),
        _f("subject", "Subject", "activity - subject", "title"),
        _f("body", "Notes", "body", "note", "notes", "activity - note", "comments", "description", "call notes"),
        _f("duration_minutes", "Minutes", "duration", "duration minutes", "activity - duration", "call duration"),
        _f("outcome", "Outcome", "call outcome"),
        _f("contact_email", "Contact e-mail", "contact email", "email", "person - email", "contact"),
        _f(
            "deal",
            "Deal id",
            "deal external id",
            "deal id",
            "activity - deal id",
            "associated deal id",
            "opportunity id",
        ),
        _f("owner", "Owner", *OWNER, "activity owner", "activity - assigned to user", "assigned", "assigned to"),
        _f("private", "Private", "is private"),
    ),
    "leads": (
        _f("email", "E-mail", "email address", "e-mail"),
        _f("name", "Name", "full name", "lead name"),
        _f("first_name", "First name"),
        _f("last_name", "Last name"),
        _f("phone", "Phone", "phone number", "mobile"),
        _f("company", "Company", "company name", "organization"),
        _f("source", "Source", "lead source", "original source"),
        _f("status", "Status", "lead status"),
        _f("owner", "Owner", *OWNER, "lead owner"),
        _f("created_at", "Created", "create date", "created date", "created at"),
    ),
}


def _normal(header: str) -> str:
    return re.sub(r"[^a-z0-9/]+", " ", header.lower()).strip()


def detect_mapping(kind: str, headers: list[str]) -> dict[str, str]:
    """Our field → the file's header, for every field a header names (first alias wins, each
    header used once)."""
    by_normal: dict[str, str] = {}
    for header in headers:
        by_normal.setdefault(_normal(header), header)
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for spec in FIELDS[kind]:
        for alias in spec.aliases:
            header = by_normal.get(_normal(alias))
            if header is not None and header not in used:
                mapping[spec.name] = header
                used.add(header)
                break
    return mapping


def headers_key(headers: list[str]) -> str:
    return hashlib.sha256("\x1f".join(_normal(h) for h in headers).encode()).hexdigest()


def mapping_for(session: Session, organization_id: int, kind: str, headers: list[str]) -> dict[str, str]:
    """A saved mapping for files with these headers, else the one detected."""
    saved = session.scalar(
        select(ImportMapping.mapping).where(
            ImportMapping.organization_id == organization_id,
            ImportMapping.kind == kind,
            ImportMapping.headers_key == headers_key(headers),
        )
    )
    if saved:
        return {name: header for name, header in saved.items() if header in headers}
    return detect_mapping(kind, headers)


def check_mapping(kind: str, headers: list[str], mapping: dict[str, Any]) -> dict[str, str]:
    """A mapping as posted or read from a file, checked: known fields, headers of the file,
    each header once, the kind's required fields all mapped."""
    if kind not in KINDS:
        raise DomainError("Choose what the file holds: accounts, contacts, deals, activities or leads.")
    names = {spec.name for spec in FIELDS[kind]}
    clean = {name: header for name, header in mapping.items() if name in names and header}
    unknown = [header for header in clean.values() if header not in headers]
    if unknown:
        raise DomainError(f"The file has no column {unknown[0]!r}.", {"mapping": ["Map to the file's columns."]})
    if len(set(clean.values())) != len(clean):
        raise DomainError("A column is mapped to two fields.", {"mapping": ["Each column once."]})
    missing = [spec.label for spec in FIELDS[kind] if spec.required and spec.name not in clean]
    if kind in ("contacts", "leads") and not {"email", "name", "first_name", "last_name"} & set(clean):
        missing.append("Name or E-mail")
    if missing:
        raise DomainError(
            f"Map a column to {', '.join(missing)}: {kind} need it.", {"mapping": [f"{m} is needed." for m in missing]}
        )
    return clean


def save_mapping(
    session: Session, organization_id: int, kind: str, headers: list[str], mapping: dict[str, str]
) -> None:
    key = headers_key(headers)
    held = session.scalar(
        select(ImportMapping).where(
            ImportMapping.organization_id == organization_id,
            ImportMapping.kind == kind,
            ImportMapping.headers_key == key,
        )
    )
    if held is None:
        session.add(ImportMapping(organization_id=organization_id, kind=kind, headers_key=key, mapping=mapping))
    else:
        held.mapping = mapping


# -- reading a row's cells ---------------------------------------------------------------------------


class Refused(Exception):
    """A row that cannot be imported, and why (shown on its line)."""


_MONTH_FIRST = ("en_US", "en_PH", "en_CA")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y", "%d %b %Y", "%b %d, %Y", "%d %B %Y", "%B %d, %Y")


def _parse_day(text: str, locale: str) -> date:
    text = text.strip()
    slash = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", text)
    if slash:
        a, b, year = (int(part) for part in slash.groups())
        month, day = (a, b) if locale in _MONTH_FIRST else (b, a)
        return date(year, month, day)
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(text)


def parse_when(text: str, locale: str, zone: ZoneInfo) -> datetime:
    """A date or a date and time as exports write them (ISO 8601, ``YYYY-MM-DD HH:MM``, the
    locale's day/month order), in the organization's zone unless it names its own; as UTC."""
    text = text.strip()
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        date_part, _, time_part = text.partition(" ")
        day = _parse_day(date_part if time_part and ":" in time_part else text, locale)
        moment = time()
        if time_part and ":" in time_part:
            for fmt in ("%H:%M:%S", "%H:%M", "%I:%M %p", "%I:%M:%S %p"):
                try:
                    moment = datetime.strptime(time_part.strip(), fmt).time()
                    break
                except ValueError:
                    continue
            else:
                raise ValueError(text) from None
        value = datetime.combine(day, moment)
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(timezone.utc)


TYPES = {
    "email": "email", "e-mail": "email", "mail": "email", "emails": "email",
    "call": "call", "phone call": "call", "phone": "call", "calls": "call", "logged call": "call",
    "meeting": "meeting", "meetings": "meeting", "event": "meeting", "lunch": "meeting",
    "visit": "visit", "site visit": "visit",
    "note": "note", "notes": "note",
    "task": "task", "to-do": "task", "todo": "task", "deadline": "task",
    "sms": "sms", "text": "sms", "whatsapp": "whatsapp",
}  # fmt: skip
DIRECTIONS = {
    "inbound": "inbound", "incoming": "inbound", "in": "inbound", "received": "inbound",
    "outbound": "outbound", "outgoing": "outbound", "out": "outbound", "sent": "outbound",
    "internal": "internal",
}  # fmt: skip
OUTCOMES = {
    "connected": "connected", "answered": "connected", "no answer": "no_answer", "no_answer": "no_answer",
    "left voicemail": "voicemail", "voicemail": "voicemail", "left live message": "connected", "busy": "busy",
    "held": "held", "completed": "held", "done": "held", "no show": "no_show", "no_show": "no_show",
    "rescheduled": "rescheduled", "cancelled": "cancelled", "canceled": "cancelled",
}  # fmt: skip
TRUE = ("1", "yes", "y", "true", "x", "private", "oui", "ja")
WON = ("won", "closed won", "closedwon", "closed - won")
LOST = ("lost", "closed lost", "closedlost", "closed - lost")


@dataclass
class Outcome:
    """What one row did, or would do."""

    line: int
    action: str
    label: str = ""
    reason: str = ""


@dataclass
class Pending:
    """A chunk's writes, planned: new rows per table, changes to rows that exist."""

    creates: list[tuple[str, dict[str, Any], Any]] = field(default_factory=list)  # (kind, values, extra)
    updates: list[tuple[type, int, dict[str, Any], dict[str, Any]]] = field(default_factory=list)


class Importer:
    """One file of one kind, planned row by row (``plan``) and written chunk by chunk (``write``)."""

    def __init__(
        self,
        session: Session,
        organization: Organization,
        kind: str,
        mapping: dict[str, str],
        headers: list[str],
        importer_id: int,
        *,
        now: datetime | None = None,
        run_id: int | None = None,
    ) -> None:
        self.session, self.org, self.kind = session, organization, kind
        self.columns = {name: headers.index(header) for name, header in mapping.items()}
        self.headers = headers
        self.importer_id = importer_id
        self.now = now or utcnow()
        self.run_id = run_id
        self.locale = organization.setting("locale")
        self.zone = ZoneInfo(organization.time_zone)
        self.seen: dict[Any, int] = {}  # a key of this file → the line that took it (a later row merges)
        self._people()
        self._stages()
        self._blocks()

    # -- what the organization holds, read once ------------------------------------------------

    def _people(self) -> None:
        rows = self.session.execute(
            select(User.id, User.email, User.name, User.is_active).where(User.organization_id == self.org.id)
        ).all()
        self.by_email = {email: (ident, active) for ident, email, _, active in rows}
        names: dict[str, list[tuple[int, bool]]] = {}
        for ident, _, name, active in rows:
            names.setdefault(name.strip().lower(), []).append((ident, active))
        self.by_name = {name: found[0] for name, found in names.items() if len(found) == 1}

    def _stages(self) -> None:
        stages = self.session.execute(
            select(Stage.id, Stage.name, Stage.position, Stage.retired_at)
            .where(Stage.organization_id == self.org.id)
            .order_by(Stage.position)
        ).all()
        self.stages = {name.strip().lower(): (ident, position) for ident, name, position, _ in stages}
        live = [(ident, position) for ident, _, position, retired in stages if retired is None]
        self.last_stage = live[-1] if live else None

    def _blocks(self) -> None:
        self.blocked: dict[int | None, set[str]] = {}
        for owner, value in self.session.execute(
            select(BlockEntry.owner_id, BlockEntry.value).where(BlockEntry.organization_id == self.org.id)
        ):
            self.blocked.setdefault(owner, set()).add(value)

    def is_blocked(self, address: str, owner_id: int) -> bool:
        labels = address.rpartition("@")[2].split(".")
        candidates = {address} | {".".join(labels[n:]) for n in range(len(labels) - 1)}
        return bool(candidates & (self.blocked.get(None, set()) | self.blocked.get(owner_id, set())))

    # -- cells -----------------------------------------------------------------------------------

    def cell(self, row: list[str], name: str) -> str:
        index = self.columns.get(name)
        return row[index].strip() if index is not None else ""

    def owner(self, row: list[str], *, active: bool) -> int:
        text = self.cell(row, "owner")
        if not text:
            return self.importer_id
        found = self.by_email.get(normalise_address(text)) or self.by_name.get(text.lower())
        if found is None:
            raise Refused(f"unknown owner {text!r}: no one of the organization has this e-mail or name")
        ident, is_active = found
        if active and not is_active:
            raise Refused(f"owner {text!r} is deactivated: open work goes to an active person")
        return ident

    def email(self, row: list[str], name: str = "email", *, required: bool = False) -> str | None:
        text = self.cell(row, name)
        if not text:
            if required:
                raise Refused("no e-mail address")
            return None
        address = normalise_address(text.split(",")[0].split(";")[0])
        if not is_valid_address(address):
            raise Refused(f"{text!r} is not an e-mail address")
        return address

    def amount(self, row: list[str]) -> Decimal:
        text = self.cell(row, "amount")
        if not text:
            return Decimal("0")
        try:
            value = parse_amount(text, self.locale)
        except AmountError:
            raise Refused(f"amount {text!r} is not a number as {self.locale} writes one") from None
        if not 0 <= value < MAX_AMOUNT:
            raise Refused(f"amount {text!r} is out of range")
        return value.quantize(Decimal("0.01"))

    def when(self, row: list[str], name: str, *, required: bool = False, future: bool = False) -> datetime | None:
        text = self.cell(row, name)
        if not text:
            if required:
                raise Refused(f"no {name.replace('_', ' ')}")
            return None
        try:
            value = parse_when(text, self.locale, self.zone)
        except (ValueError, OverflowError):
            raise Refused(f"{text!r} is not a date") from None
        latest_allowed = self.now + (timedelta(days=3660) if future else timedelta(days=1))
        if value.date() < EARLIEST or value > latest_allowed:
            raise Refused(f"date {text!r} is out of range")
        return value

    def day(self, row: list[str], name: str) -> date | None:
        """A calendar day (an expected close date): as written, no time zone to shift it."""
        text = self.cell(row, name)
        if not text:
            return None
        try:
            value = _parse_day(text[:10] if re.match(r"\d{4}-\d{2}-\d{2}", text) else text, self.locale)
        except ValueError:
            raise Refused(f"{text!r} is not a date") from None
        if not EARLIEST <= value < LATEST:
            raise Refused(f"date {text!r} is out of range")
        return value

    def name_of(self, row: list[str], address: str | None) -> str:
        name = self.cell(row, "name") or " ".join(
            p for p in (self.cell(row, "first_name"), self.cell(row, "last_name")) if p
        )
        return (name or (address.split("@")[0] if address else ""))[:200]

    # -- planning ----------------------------------------------------------------------------

    def plan(self, rows: list[tuple[int, list[str]]]) -> tuple[list[Outcome], Pending]:
        """What each row of a chunk will do, and the writes that do it."""
        outcomes: list[Outcome] = []
        pending = Pending()
        planner: Callable = getattr(self, f"_plan_{self.kind}")
        prepared = []
        for line, row in rows:
            formula = next((self.headers[i] for i, c in enumerate(row) if c and is_formula(c)), None)
            if formula is not None:
                outcomes.append(Outcome(line, "refuse", reason=f"a formula in column {formula!r} is never imported"))
            else:
                prepared.append((line, row))
        for outcome in planner(prepared, pending):
            outcomes.append(outcome)
        outcomes.sort(key=lambda o: o.line)
        return outcomes, pending

    def _merge_or_take(self, key: Any, line: int) -> Outcome | None:
        if key in self.seen:
            return Outcome(line, "merge", reason=f"the same as line {self.seen[key]}")
        self.seen[key] = line
        return None

    def _existing_accounts(self, names: Iterable[str], domains: Iterable[str]) -> tuple[dict, dict]:
        names, domains = list(set(names)), list(set(domains))
        by_domain: dict[str, int] = {}
        for start in range(0, len(domains), 500):
            by_domain.update(
                self.session.execute(
                    select(AccountDomain.domain, AccountDomain.account_id)
                    .join(Account, Account.id == AccountDomain.account_id)
                    .where(
                        AccountDomain.organization_id == self.org.id,
                        AccountDomain.domain.in_(domains[start : start + 500]),
                        Account.deleted_at.is_(None),
                    )
                ).all()
            )
        by_name: dict[str, Any] = {}
        for start in range(0, len(names), 500):
            for row in self.session.execute(
                select(Account.id, Account.name, Account.city, Account.owner_id).where(
                    Account.organization_id == self.org.id,
                    func.lower(Account.name).in_(names[start : start + 500]),
                    Account.deleted_at.is_(None),
                )
            ):
                by_name.setdefault(row.name.lower(), row)
        return by_name, by_domain

    def _account_rows(self, ids: Iterable[int]) -> dict[int, Any]:
        ids = list(set(ids))
        found: dict[int, Any] = {}
        for start in range(0, len(ids), 500):
            for row in self.session.execute(
                select(Account.id, Account.name, Account.city, Account.owner_id).where(
                    Account.organization_id == self.org.id, Account.id.in_(ids[start : start + 500])
                )
            ):
                found[row.id] = row
        return found

    def _plan_accounts(self, rows: list[tuple[int, list[str]]], pending: Pending) -> Iterator[Outcome]:
        names = [self.cell(r, "name").lower() for _, r in rows]
        domains = [self._domain(self.cell(r, "domain")) for _, r in rows]
        by_name, by_domain = self._existing_accounts(names, [d for d in domains if d])
        accounts = self._account_rows(by_domain.values())
        for (line, row), domain in zip(rows, domains):
            try:
                name = self.cell(row, "name")[:200]
                if not name:
                    raise Refused("no name")
                if domain == "":
                    raise Refused(f"{self.cell(row, 'domain')!r} is not a domain")
                owner = self.owner(row, active=True)
                merged = self._merge_or_take(("account", domain or name.lower()), line)
                if merged:
                    yield merged
                    continue
                existing = (
                    accounts.get(by_domain[domain]) if domain and domain in by_domain else by_name.get(name.lower())
                )
                city = self.cell(row, "city")[:120] or None
                if existing is None:
                    pending.creates.append(("account", {"name": name, "city": city, "owner_id": owner}, domain))
                    yield Outcome(line, "create", name)
                    continue
                changes = {}
                if city and city != existing.city:
                    changes["city"] = city
                if self.cell(row, "owner") and owner != existing.owner_id:
                    changes["owner_id"] = owner
                if changes:
                    before = {"city": existing.city, "owner_id": existing.owner_id}
                    pending.updates.append((Account, existing.id, changes, {k: before[k] for k in changes}))
                    yield Outcome(line, "update", name, ", ".join(changes))
                else:
                    yield Outcome(line, "unchanged", name)
            except Refused as refusal:
                yield Outcome(line, "refuse", reason=str(refusal))

    @staticmethod
    def _domain(text: str) -> str | None:
        """A domain from a domain or a website's address; None when blank, "" when not one."""
        text = text.strip().lower()
        if not text:
            return None
        text = re.sub(r"^[a-z]+://", "", text).split("/")[0].removeprefix("www.").rstrip(".")
        return text if re.fullmatch(r"([a-z0-9-]+\.)+[a-z]{2,63}", text) and not is_public_domain(text) else ""

    def _existing_contacts(self, addresses: list[str]) -> dict[str, Any]:
        """The live contacts with these addresses, by address. In two index lookups (the
        addresses, then their contacts by id): joined in one statement, PostgreSQL without
        statistics on a table an import is filling scanned every contact for each chunk."""
        ids: dict[str, int] = {}
        for start in range(0, len(addresses), 500):
            ids.update(
                self.session.execute(
                    select(ContactEmail.address, ContactEmail.contact_id).where(
                        ContactEmail.organization_id == self.org.id,
                        ContactEmail.address.in_(addresses[start : start + 500]),
                    )
                ).all()
            )
        contacts: dict[int, Any] = {}
        wanted = sorted(set(ids.values()))
        for start in range(0, len(wanted), 500):
            for row in self.session.execute(
                select(Contact.id, Contact.name, Contact.title, Contact.account_id, Contact.owner_id).where(
                    Contact.id.in_(wanted[start : start + 500]), Contact.deleted_at.is_(None)
                )
            ):
                contacts[row.id] = row
        return {address: contacts[ident] for address, ident in ids.items() if ident in contacts}

    def _plan_contacts(self, rows: list[tuple[int, list[str]]], pending: Pending) -> Iterator[Outcome]:
        addresses = [normalise_address(self.cell(r, "email")) for _, r in rows]
        existing = self._existing_contacts([a for a in addresses if a])
        account_names = [self.cell(r, "account").lower() for _, r in rows if self.cell(r, "account")]
        by_name, by_domain = self._existing_accounts(account_names, [domain_of(a) for a in addresses if "@" in a])
        for line, row in rows:
            try:
                address = self.email(row, required=True)
                owner = self.owner(row, active=True)
                name = self.name_of(row, address)
                merged = self._merge_or_take(("contact", address), line)
                if merged:
                    yield merged
                    continue
                account_text = self.cell(row, "account")
                account = by_name.get(account_text.lower()) if account_text else None
                account_id = account.id if account is not None else by_domain.get(domain_of(address))
                if account_text and account is None and account_id is None:
                    raise Refused(f"unknown account {account_text!r}: import the accounts first")
                held = existing.get(address)
                title = self.cell(row, "title")[:200] or None
                phone = self.cell(row, "phone")[:40] or None
                if held is None:
                    values = {"name": name, "title": title, "account_id": account_id, "owner_id": owner}
                    pending.creates.append(("contact", values, (address, phone)))
                    yield Outcome(line, "create", f"{name} <{address}>")
                    continue
                changes = {}
                if self.cell(row, "name") or self.cell(row, "first_name"):
                    if name != held.name:
                        changes["name"] = name
                if title and title != held.title:
                    changes["title"] = title
                if account_id and account_id != held.account_id:
                    changes["account_id"] = account_id
                if changes:
                    before = {"name": held.name, "title": held.title, "account_id": held.account_id}
                    pending.updates.append((Contact, held.id, changes, {k: before[k] for k in changes}))
                    yield Outcome(line, "update", f"{name} <{address}>", ", ".join(changes))
                else:
                    yield Outcome(line, "unchanged", f"{name} <{address}>")
            except Refused as refusal:
                yield Outcome(line, "refuse", reason=str(refusal))

    def _plan_deals(self, rows: list[tuple[int, list[str]]], pending: Pending) -> Iterator[Outcome]:
        account_names = [self.cell(r, "account").lower() for _, r in rows]
        by_name, by_domain = self._existing_accounts(account_names, [self._domain(n) or "" for n in account_names])
        ids = [self.cell(r, "external_id")[:255] for _, r in rows if self.cell(r, "external_id")]
        held: dict[str, Any] = {}
        for start in range(0, len(ids), 500):
            for deal in self.session.execute(
                select(
                    Opportunity.id,
                    Opportunity.external_id,
                    Opportunity.name,
                    Opportunity.amount,
                    Opportunity.expected_close_date,
                    Opportunity.stage_id,
                    Opportunity.status,
                ).where(  # fmt: skip
                    Opportunity.organization_id == self.org.id, Opportunity.external_id.in_(ids[start : start + 500])
                )
            ):
                held[deal.external_id] = deal
        for line, row in rows:
            try:
                name = self.cell(row, "name")[:200]
                if not name:
                    raise Refused("no name")
                account_text = self.cell(row, "account")
                account = by_name.get(account_text.lower())
                account_id = account.id if account is not None else by_domain.get(self._domain(account_text) or "")
                if account_id is None:
                    raise Refused(f"unknown account {account_text!r}: import the accounts first")
                stage_text = self.cell(row, "stage")
                status = self.cell(row, "status").lower() or "open"
                if stage_text.lower() in WON:
                    status = "won"
                elif stage_text.lower() in LOST:
                    status = "lost"
                status = "won" if status in WON else "lost" if status in LOST else status
                if status not in ("open", "won", "lost"):
                    raise Refused(f"status {self.cell(row, 'status')!r} is not open, won or lost")
                stage = self.stages.get(stage_text.lower())
                if stage is None and status == "open":
                    raise Refused(f"unknown stage {stage_text!r}: add it to the pipeline or map it")
                stage = stage or self.last_stage
                if stage is None:
                    raise Refused("the pipeline has no stage")
                amount = self.amount(row)
                close = self.day(row, "close_date")
                closed = self.when(row, "closed_at")
                created = self.when(row, "created_at") or self.now
                owner = self.owner(row, active=status == "open")
                external_id = self.cell(row, "external_id")[:255] or None
                merged = self._merge_or_take(("deal", external_id or (account_id, name.lower())), line)
                if merged:
                    yield merged
                    continue
                if closed is None and close is not None and status != "open":
                    closed = min(datetime.combine(close, time(12), self.zone).astimezone(timezone.utc), self.now)
                closed_at = (closed or self.now) if status != "open" else None
                if closed_at is not None and closed_at < created:
                    created = closed_at
                values = {
                    "name": name, "account_id": account_id, "owner_id": owner, "amount": amount, "status": status,
                    "stage_id": stage[0], "expected_close_date": close,
                    "closed_at": closed_at, "created_at": created, "stage_entered_at": created,
                    "loss_reason": (self.cell(row, "loss_reason")[:200] or "Not given") if status == "lost" else None,
                    "external_id": external_id,
                }  # fmt: skip
                deal = held.get(external_id) if external_id else None
                if deal is None:
                    pending.creates.append(("deal", values, stage))
                    yield Outcome(line, "create", name)
                    continue
                changes = {
                    key: values[key]
                    for key in ("name", "amount", "expected_close_date")
                    if values[key] is not None and values[key] != getattr(deal, key)
                }
                if changes:
                    before = {key: getattr(deal, key) for key in changes}
                    pending.updates.append((Opportunity, deal.id, changes, before))
                    yield Outcome(line, "update", name, ", ".join(changes))
                else:
                    yield Outcome(line, "unchanged", name)
            except Refused as refusal:
                yield Outcome(line, "refuse", reason=str(refusal))

    def _plan_activities(self, rows: list[tuple[int, list[str]]], pending: Pending) -> Iterator[Outcome]:
        keys = []
        for _, row in rows:
            keys.extend(k for k in self._activity_keys(row) if k)
        held: set[str] = set()
        for start in range(0, len(keys), 500):
            held.update(
                self.session.scalars(
                    select(Activity.external_id).where(
                        Activity.organization_id == self.org.id, Activity.external_id.in_(keys[start : start + 500])
                    )
                )
            )
        addresses = list({normalise_address(self.cell(r, "contact_email")) for _, r in rows} - {""})
        contacts = self._existing_contacts(addresses)
        deal_ids = list({self.cell(r, "deal")[:255] for _, r in rows} - {""})
        deals: dict[str, tuple[int, int]] = {}  # external id → (deal, its account)
        for start in range(0, len(deal_ids), 500):
            for external_id, ident, account_id in self.session.execute(
                select(Opportunity.external_id, Opportunity.id, Opportunity.account_id).where(
                    Opportunity.organization_id == self.org.id,
                    Opportunity.external_id.in_(deal_ids[start : start + 500]),
                )
            ):
                deals[external_id] = (ident, account_id)
        checklists = notes.checklists(self.session, self.org.id)
        retention = self.org.setting("body_retention_months")
        keep_after = self.now - timedelta(days=31 * retention) if retention else None
        internal_logged = self.org.setting("log_internal_mail")
        own_domains = set(self.org.domains or [])
        for line, row in rows:
            try:
                text = self.cell(row, "type")
                kind = TYPES.get(text.lower())
                if kind is None:
                    raise Refused(f"unknown activity type {text!r}: one of {', '.join(ACTIVITY_TYPES)}")
                occurred = self.when(row, "occurred_at", required=True)
                owner = self.owner(row, active=False)
                direction_text = self.cell(row, "direction").lower()
                if direction_text and direction_text not in DIRECTIONS:
                    raise Refused(f"direction {direction_text!r} is not inbound or outbound")
                direction = DIRECTIONS.get(direction_text) or ("internal" if kind in ("note", "task") else "outbound")
                outcome_text = self.cell(row, "outcome").lower()
                outcome = OUTCOMES.get(outcome_text) if outcome_text else None
                if outcome_text and outcome is None:
                    raise Refused(f"outcome {outcome_text!r} is not one we know")
                minutes_text = self.cell(row, "duration_minutes")
                minutes = None
                if minutes_text:
                    try:
                        minutes = round(float(minutes_text.replace(",", ".")))
                    except ValueError:
                        raise Refused(f"duration {minutes_text!r} is not a number of minutes") from None
                    if not 0 <= minutes <= 24 * 60:
                        raise Refused(f"duration {minutes_text!r} is out of range")
                address = self.email(row, "contact_email")
                if address and self.is_blocked(address, owner):
                    raise Refused(f"{address} is on a block list: its mail is never logged")
                if address and kind == "email" and domain_of(address) in own_domains and not internal_logged:
                    raise Refused("internal mail is not logged (the organization's setting)")
                external_id, message_id = self._activity_keys(row)
                key = message_id or external_id
                if any(k in held for k in (message_id, external_id) if k):  # by either, as an earlier import kept it
                    yield Outcome(line, "unchanged", self.cell(row, "subject")[:80] or kind)
                    continue
                merged = self._merge_or_take(("activity", key), line) if key else None
                if merged:
                    yield merged
                    continue
                contact = contacts.get(address) if address else None
                deal_text = self.cell(row, "deal")
                deal = deals.get(deal_text[:255]) if deal_text else None
                if deal_text and deal is None:
                    raise Refused(f"unknown deal {deal_text!r}: import the deals first")
                deal_id = deal[0] if deal else None
                account_id = deal[1] if deal else (contact.account_id if contact else None)
                body = self.cell(row, "body")[:100_000] or None
                if body and keep_after is not None and occurred < keep_after:
                    body = None  # past the organization's retention: the body is not kept
                questions = checklists.get(kind, []) if kind in notes.SCORED_TYPES else []
                values = {
                    "type": kind, "direction": direction, "occurred_at": occurred, "duration_minutes": minutes,
                    "outcome": outcome, "subject": self.cell(row, "subject")[:500] or None, "body_text": body,
                    "contact_id": contact.id if contact else None, "account_id": account_id, "opportunity_id": deal_id,
                    "owner_id": owner, "source": "import", "external_id": key,
                    "is_private": self.cell(row, "private").lower() in TRUE,
                    "checklist_questions": len(questions) if questions else None,
                    "checklist_answered": notes.answered_questions(body, questions) if questions else None,
                }  # fmt: skip
                pending.creates.append(("activity", values, None))
                yield Outcome(line, "create", values["subject"] or kind)
            except Refused as refusal:
                yield Outcome(line, "refuse", reason=str(refusal))

    def _activity_keys(self, row: list[str]) -> tuple[str | None, str | None]:
        external = self.cell(row, "external_id")
        message = self.cell(row, "message_id").strip()
        if message and not message.startswith("<"):
            message = f"<{message}>"
        return (f"import:{external}"[:512] if external else None), (message[:512] or None)

    def _plan_leads(self, rows: list[tuple[int, list[str]]], pending: Pending) -> Iterator[Outcome]:
        addresses = list({normalise_address(self.cell(r, "email")) for _, r in rows} - {""})
        held = dict(
            self.session.execute(
                select(Lead.email, Lead.id).where(
                    Lead.organization_id == self.org.id, Lead.email.in_(addresses), Lead.deleted_at.is_(None)
                )
            ).all()
        ) if addresses else {}  # fmt: skip
        channels = {channel.value for channel in LeadChannel}
        for line, row in rows:
            try:
                address = self.email(row)
                name = self.name_of(row, address)
                if not name:
                    raise Refused("no name and no e-mail")
                owner = self.owner(row, active=True)
                status = self.cell(row, "status").lower() or "new"
                if status not in ("new", "working", "qualified", "disqualified"):
                    status = {
                        "open": "new",
                        "in progress": "working",
                        "contacted": "working",
                        "unqualified": "disqualified",
                    }.get(status)
                    if status is None:
                        raise Refused(
                            f"status {self.cell(row, 'status')!r} is not new, working, qualified or disqualified"
                        )
                source = self.cell(row, "source").lower().replace(" ", "_")
                source = source if source in channels else "other"
                created = self.when(row, "created_at") or self.now
                merged = self._merge_or_take(("lead", address or name.lower()), line)
                if merged:
                    yield merged
                    continue
                if address and address in held:
                    yield Outcome(line, "unchanged", name)
                    continue
                values = {
                    "name": name, "email": address, "phone": self.cell(row, "phone")[:40] or None,
                    "company": self.cell(row, "company")[:200] or None, "source": source, "owner_id": owner,
                    "status": status, "created_at": created,
                    "disqualify_reason": "Imported as disqualified" if status == "disqualified" else None,
                }  # fmt: skip
                pending.creates.append(("lead", values, None))
                yield Outcome(line, "create", name)
            except Refused as refusal:
                yield Outcome(line, "refuse", reason=str(refusal))

    # -- writing -------------------------------------------------------------------------------

    def write(self, pending: Pending) -> None:
        """The chunk's writes, in bulk statements, with their change numbers and what undoing
        them needs; the caller commits."""
        if not pending.creates and not pending.updates:
            return
        seq = next_seq(self.session, self.org.id)
        base = {"organization_id": self.org.id, "sync_seq": seq}
        made: dict[type, list[int]] = {}
        by_kind: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        for kind, values, extra in pending.creates:
            by_kind.setdefault(kind, []).append((values, extra))
        if "account" in by_kind:
            rows = by_kind["account"]
            ids = self._insert(Account, [base | {"created_at": self.now} | values for values, _ in rows])
            self._insert(
                AccountDomain,
                [{"organization_id": self.org.id, "account_id": i, "domain": d} for i, (_, d) in zip(ids, rows) if d],
                returning=False,
            )
            made[Account] = ids
        if "contact" in by_kind:
            rows = by_kind["contact"]
            ids = self._insert(Contact, [base | {"created_at": self.now} | values for values, _ in rows])
            self._insert(
                ContactEmail,
                [{"organization_id": self.org.id, "contact_id": i, "address": a} for i, (_, (a, _p)) in zip(ids, rows)],
                returning=False,
            )
            phones = [
                {"organization_id": self.org.id, "contact_id": i, "number": p, "kind": "work"}
                for i, (_, (_a, p)) in zip(ids, rows)
                if p
            ]
            self._insert(ContactPhone, phones, returning=False)
            made[Contact] = ids
        if "deal" in by_kind:
            made[Opportunity] = self._insert_deals(base, by_kind["deal"])
        if "activity" in by_kind:
            made[Activity] = self._insert(
                Activity, [base | {"created_at": self.now, "updated_at": self.now} | v for v, _ in by_kind["activity"]]
            )
        if "lead" in by_kind:
            made[Lead] = self._insert(Lead, [base | values for values, _ in by_kind["lead"]])
        for model, ids in made.items():
            for ident in ids:
                webhooks.changed(
                    self.session, self.org.id, RECORD_TYPE[model], record_id=ident, version=seq, created=True
                )
        for model, ident, changes, _ in pending.updates:
            rows_changed(self.session, self.org.id, model, [ident], changes)
        if self.run_id is not None:
            kept = [
                {
                    "organization_id": self.org.id,
                    "import_id": self.run_id,
                    "record_type": RECORD_TYPE[m],
                    "record_id": None,
                    "before": None,
                    "made": ids,
                }
                for m, ids in made.items()
                if ids
            ] + [
                {
                    "organization_id": self.org.id,
                    "import_id": self.run_id,
                    "record_type": RECORD_TYPE[m],
                    "record_id": i,
                    "before": {k: plain(v) for k, v in before.items()},
                    "made": None,
                }  # fmt: skip
                for m, i, _, before in pending.updates
            ]
            self._insert(ImportChange, kept, returning=False)

    def _insert(self, model: type, rows: list[dict[str, Any]], *, returning: bool = True) -> list[int]:
        """Core's bulk insert, the rows' ids taken first (``_new_ids``) so that no RETURNING is
        needed: with its rows' order kept, SQLite's RETURNING ran one statement per row."""
        if not rows:
            return []
        table = model.__table__
        connection = self.session.connection()
        ids: list[int] = []
        if returning:
            ids = self._new_ids(table, len(rows))
            for row, ident in zip(rows, ids):
                row["id"] = ident
        connection.execute(table.insert(), rows)
        return ids

    def _new_ids(self, table: Any, count: int) -> list[int]:
        """Ids for ``count`` new rows: from the table's sequence on PostgreSQL (unique whoever
        else inserts meanwhile); on SQLite the next ones after the largest, which this
        transaction may take because it holds the store's only write lock."""
        connection = self.session.connection()
        if connection.dialect.name == "postgresql":
            return list(
                connection.scalars(
                    text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"),
                    {"table": table.name, "count": count},
                )
            )
        first = (connection.scalar(select(func.max(table.c.id))) or 0) + 1
        return list(range(first, first + count))

    def _insert_deals(self, base: dict[str, Any], rows: list[tuple[dict[str, Any], Any]]) -> list[int]:
        currency = self.org.currency
        values = []
        for deal, (stage_id, position) in rows:
            values.append(
                base
                | deal
                | {
                    "currency": currency,
                    "stages_reached": 1 << position,
                    "furthest_position": position,
                    "ever_won": deal["status"] == "won",
                }
            )
        ids = self._insert(Opportunity, values)
        changes = []
        for ident, (deal, (stage_id, _)) in zip(ids, rows):
            changes.append(
                {
                    "organization_id": self.org.id,
                    "opportunity_id": ident,
                    "from_stage_id": None,
                    "to_stage_id": stage_id,
                    "from_status": None,
                    "to_status": "open",
                    "changed_at": deal["created_at"],
                    "changed_by_id": None,
                }
            )
            if deal["status"] != "open":
                changes.append(
                    {
                        "organization_id": self.org.id,
                        "opportunity_id": ident,
                        "from_stage_id": stage_id,
                        "to_stage_id": stage_id,
                        "from_status": "open",
                        "to_status": deal["status"],
                        "changed_at": deal["closed_at"],
                        "changed_by_id": None,
                    }
                )
        self._insert(StageChange, changes, returning=False)
        return ids


# -- a whole file -------------------------------------------------------------------------------


@dataclass
class Report:
    """What an import did, or would do: each row's outcome (the first ``shown``), and the counts."""

    outcomes: list[Outcome]
    counts: dict[str, int]
    total: int

    def summary(self, dry_run: bool) -> str:
        words = WOULD if dry_run else DID
        return f"{self.total} rows: " + ", ".join(f"{self.counts.get(a, 0)} {words[a]}" for a in ACTIONS)


WOULD = {
    "create": "to create",
    "update": "to update",
    "merge": "to merge",
    "unchanged": "unchanged",
    "refuse": "refused",
}
DID = {"create": "created", "update": "updated", "merge": "merged", "unchanged": "unchanged", "refuse": "refused"}
SHOWN = 1_000  # the outcomes a report keeps line by line (the counts cover every row)


def plan_rows(session: Session, actor: User, kind: str, table: Table, mapping: dict[str, str]) -> Report:
    """What each of the table's rows would do, chunk by chunk; nothing is written (the planning's
    reads are rolled back)."""
    importer = Importer(session, actor.organization, kind, mapping, table.headers, actor.id)
    counts: dict[str, int] = {}
    shown: list[Outcome] = []
    for offset in range(0, len(table.rows), CHUNK):
        chunk = [(offset + i + 2, row) for i, row in enumerate(table.rows[offset : offset + CHUNK])]
        for outcome in importer.plan(chunk)[0]:
            counts[outcome.action] = counts.get(outcome.action, 0) + 1
            if len(shown) < SHOWN:
                shown.append(outcome)
    session.rollback()
    return Report(shown, counts, len(table.rows))


def _admin(actor: User) -> None:
    if actor.role != "admin":
        raise Forbidden("Only admins import.")


def dry_run(
    session: Session, actor: User, kind: str, data: bytes, filename: str, mapping: dict[str, str] | None
) -> tuple[Report, dict[str, str], Table]:
    """What importing the file would do, row by row; nothing is written (the session is rolled back)."""
    _admin(actor)
    table = read_table(data, filename)
    if mapping is None:
        mapping = mapping_for(session, actor.organization_id, kind, table.headers)
    mapping = check_mapping(kind, table.headers, mapping)
    return plan_rows(session, actor, kind, table, mapping), mapping, table


def upload(session: Session, actor: User, kind: str, data: bytes, filename: str) -> ImportRun:
    """A file kept as a draft import, for its columns to be mapped and its rows previewed
    (``preview``) before it is queued (``queue``); a draft nobody queues is forgotten in a day."""
    _admin(actor)
    if kind not in KINDS:
        raise DomainError("Choose what the file holds.", {"kind": ["Choose a kind."]})
    table = read_table(data, filename)
    run = ImportRun(
        organization_id=actor.organization_id,
        kind=kind,
        filename=(filename or "import")[:255],
        content=data,
        mapping=mapping_for(session, actor.organization_id, kind, table.headers),
        status="draft",
        rows_total=len(table.rows),
        created_by_id=actor.id,
    )
    session.add(run)
    session.flush()
    return run


def draft(session: Session, actor: User, run_id: int) -> tuple[ImportRun, Table]:
    _admin(actor)
    run = session.get(ImportRun, run_id)
    if run is None or run.organization_id != actor.organization_id:
        raise NotFound("import")
    if run.status != "draft" or run.content is None:
        raise DomainError("That import has started already.")
    return run, read_table(run.content, run.filename)


def preview(session: Session, actor: User, run_id: int, mapping: dict[str, str]) -> tuple[ImportRun, Report]:
    """The draft's dry run with this mapping: each row's outcome, nothing written."""
    run, table = draft(session, actor, run_id)
    report = plan_rows(session, actor, run.kind, table, check_mapping(run.kind, table.headers, mapping))
    return session.get(ImportRun, run_id), report


def queue(session: Session, actor: User, run_id: int, mapping: dict[str, str]) -> ImportRun:
    """The draft queued for the worker with this mapping, which is saved for the next file with
    the same columns."""
    run, table = draft(session, actor, run_id)
    run.mapping = check_mapping(run.kind, table.headers, mapping)
    save_mapping(session, actor.organization_id, run.kind, table.headers, run.mapping)
    run.status = "queued"
    record_event(
        session, actor, "import", run, after={"kind": run.kind, "filename": run.filename, "rows": run.rows_total}
    )
    return run


def start_import(
    session: Session, actor: User, kind: str, data: bytes, filename: str, mapping: dict[str, str]
) -> ImportRun:
    """An import queued for the worker (``continue_import``) at once: the command's."""
    run = upload(session, actor, kind, data, filename)
    return queue(session, actor, run.id, mapping)


def forget_old_imports(session: Session, now: datetime | None = None) -> int:
    """The daily job's part: drafts a day old that nobody queued, the files of failed imports,
    and what undoing an import needs once it can no longer be undone. Returns the drafts gone."""
    now = now or utcnow()
    day_ago = now - timedelta(hours=UNDO_HOURS)
    gone = session.execute(
        delete(ImportRun).where(ImportRun.status == "draft", ImportRun.created_at < day_ago)
    ).rowcount
    session.execute(
        update(ImportRun).where(ImportRun.status == "failed", ImportRun.created_at < day_ago).values(content=None)
    )
    past_undo = select(ImportRun.id).where(ImportRun.status == "done", ImportRun.finished_at < day_ago)
    session.execute(delete(ImportChange).where(ImportChange.import_id.in_(past_undo)))
    return gone


STALE = timedelta(minutes=2)  # a run whose worker gave no sign of life this long is taken up again


def claim(session: Session, run_id: int, now: datetime) -> bool:
    """Take the run for this worker, unless another is at it (its last beat is recent)."""
    taken = session.execute(
        update(ImportRun)
        .where(
            ImportRun.id == run_id,
            ImportRun.status.in_(("queued", "running")),
            or_(ImportRun.beat_at.is_(None), ImportRun.beat_at < now - STALE),
        )
        .values(status="running", beat_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return taken == 1


def waiting_runs(session: Session, now: datetime | None = None) -> list[int]:
    """Runs queued, or left by a worker that stopped: the periodic job takes them up."""
    now = now or utcnow()
    return list(
        session.scalars(
            select(ImportRun.id)
            .where(
                ImportRun.status.in_(("queued", "running")),
                or_(ImportRun.beat_at.is_(None), ImportRun.beat_at < now - STALE),
            )
            .order_by(ImportRun.id)
        )
    )


def continue_import(sessions: Callable[[], Session], run_id: int) -> ImportRun | None:
    """The worker's part: the run's rows from where it stopped, a chunk per transaction, then
    the recount. Safe to call again after a crash: a chunk is written whole or not at all, and
    rows written before are matched and left unchanged."""
    with sessions() as session:
        if not claim(session, run_id, utcnow()):
            return session.get(ImportRun, run_id)
        run = session.get(ImportRun, run_id)
        org = session.get(Organization, run.organization_id)
        if run.content is None or run.created_by_id is None:
            run.status, run.message = "failed", "The file or the person who started the import is gone."
            session.commit()
            return run
        try:
            table = read_table(run.content, run.filename)
        except DomainError as error:
            run.status, run.message = "failed", error.message
            session.commit()
            return run
        importer = Importer(session, org, run.kind, run.mapping, table.headers, run.created_by_id, run_id=run.id)
        refused = list((run.counts or {}).get("refused_lines", []))
        counts = {k: v for k, v in (run.counts or {}).items() if k != "refused_lines"}
        for offset in range(run.rows_done, len(table.rows), CHUNK):
            chunk = [(offset + i + 2, row) for i, row in enumerate(table.rows[offset : offset + CHUNK])]
            outcomes, pending = importer.plan(chunk)
            importer.write(pending)
            for outcome in outcomes:
                counts[outcome.action] = counts.get(outcome.action, 0) + 1
                if outcome.action == "refuse" and len(refused) < 200:
                    refused.append([outcome.line, outcome.reason])
            run.rows_done = min(offset + CHUNK, len(table.rows))
            run.counts = counts | {"refused_lines": refused}
            run.beat_at = utcnow()
            session.commit()
            _keep_statistics(session, run.kind, offset // CHUNK + 1)
        _recount_touched(session, run, org)
        run.status, run.finished_at, run.content = "done", utcnow(), None
        session.commit()
        return run


# The tables each kind of import fills, whose statistics PostgreSQL's planner needs as they grow.
FILLED = {
    "accounts": ("accounts", "account_domains"),
    "contacts": ("contacts", "contact_emails"),
    "deals": ("opportunities", "stage_changes"),
    "activities": ("activities",),
    "leads": ("leads",),
}


def _keep_statistics(session: Session, kind: str, chunks: int) -> None:
    """On PostgreSQL, the filled tables analysed after the 1st, 2nd, 4th, 8th… chunk: without
    statistics on a table an import is filling, the planner matched a chunk's addresses by the
    organization alone and read every contact for each chunk, so that 100,000 contacts went in
    at a sixth of Core's speed. Doubling keeps it to a few ANALYZEs whatever the file's size."""
    if session.get_bind().dialect.name != "postgresql" or chunks & (chunks - 1):
        return
    for table in FILLED[kind]:
        session.execute(text(f"ANALYZE {table}"))
    session.commit()


def _recount_touched(session: Session, run: ImportRun, org: Organization) -> None:
    """The recount after an import (or a resumed one), from what the run's changes name, so a
    worker that restarted mid-way counts the chunks written before it stopped as well: the
    imported activities added to the rollups, the latest times of the deals and accounts they
    touched recomputed."""
    ids: dict[str, list[int]] = {}
    # (A JSON column's None is JSON ``null``, not SQL NULL: the rows without ``made`` are skipped here.)
    for record_type, made in session.execute(
        select(ImportChange.record_type, ImportChange.made).where(ImportChange.import_id == run.id)
    ):
        ids.setdefault(record_type, []).extend(made or [])
    counter, deals, accounts = _count(session, org, ids.get("activities", []))
    add_counted(session, org, counter)
    deals |= set(ids.get("opportunities", []))  # the deals it made: their health kept from today
    latest.recompute(session, org.id, deals=deals, accounts=accounts)
    snapshot(session, org, deal_ids=deals)  # today's health of the deals it touched


def _count(session: Session, org: Organization, activity_ids: list[int]) -> tuple[RollupCounter, set[int], set[int]]:
    """These activities counted for the rollups, and the deals and accounts they name."""
    counter = RollupCounter(org.time_zone, org.fiscal_year_start_month)
    deals: set[int] = set()
    accounts: set[int] = set()
    for start in range(0, len(activity_ids), 5_000):
        for row in session.execute(
            select(*COUNTED, Activity.opportunity_id, Activity.account_id).where(
                Activity.id.in_(activity_ids[start : start + 5_000]), Activity.deleted_at.is_(None)
            )
        ):
            counter.add(row[0], as_utc(row[1]), *row[2:8])
            if row[8]:
                deals.add(row[8])
            if row[9]:
                accounts.add(row[9])
    return counter, deals, accounts


def undo_import(session: Session, actor: User, run_id: int, now: datetime | None = None) -> int:
    """Take a whole import back, within a day: what it made is deleted, what it changed is put
    back as it was. Refused when something made since depends on what it made (a deal on an
    imported account). Returns how many records were taken back."""
    if actor.role != "admin":
        raise Forbidden("Only admins undo an import.")
    now = now or utcnow()
    run = session.get(ImportRun, run_id)
    if run is None or run.organization_id != actor.organization_id:
        raise NotFound("import")
    if run.status != "done" or run.undone_at is not None:
        raise DomainError("Only a finished import can be undone, once.")
    if as_utc(run.finished_at) < now - timedelta(hours=UNDO_HOURS):
        raise DomainError(f"An import can be undone for {UNDO_HOURS} hours after it finished; this one is older.")
    changes = session.execute(
        select(ImportChange.record_type, ImportChange.record_id, ImportChange.before, ImportChange.made).where(
            ImportChange.import_id == run.id
        )
    ).all()
    models = {name: model for model, name in RECORD_TYPE.items()}
    made: dict[str, list[int]] = {}
    for record_type, _, _, ids in changes:
        if ids:
            made.setdefault(record_type, []).extend(ids)
    accounts = made.get("accounts", [])
    if accounts:
        depending = session.scalar(
            select(func.count())
            .select_from(Opportunity)
            .where(Opportunity.account_id.in_(accounts), Opportunity.id.not_in(made.get("opportunities", []) or [0]))
        )
        if depending:
            raise DomainError(
                f"{depending} deals made since this import are at accounts it made: undo is no longer possible."
            )
    org = actor.organization
    counter, touched_deals, touched_accounts = _count(session, org, made.get("activities", []))
    for record_type in ("activities", "opportunities", "leads", "contacts", "accounts"):
        ids = made.get(record_type, [])
        model = models[record_type]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            release(session, actor.organization_id, model, chunk)
            session.execute(delete(model).where(model.organization_id == actor.organization_id, model.id.in_(chunk)))
            tombstones_for(session, actor.organization_id, record_type, chunk, now)
    put_back = 0
    for record_type, record_id, before, _ in changes:
        if before is not None:
            model = models[record_type]
            values = {k: _typed(model, k, v) for k, v in before.items()}
            put_back += rows_changed(session, actor.organization_id, model, [record_id], values)
    add_counted(session, org, counter, sign=-1)
    latest.recompute(
        session,
        org.id,
        deals=touched_deals - set(made.get("opportunities", [])),
        accounts=touched_accounts - set(accounts),
    )
    run.undone_at = now
    run.status = "undone"
    record_event(
        session, actor, "undo_import", run, after={"removed": sum(map(len, made.values())), "put_back": put_back}
    )
    return sum(map(len, made.values())) + put_back


def _typed(model: type, key: str, value: Any) -> Any:
    column = model.__table__.c[key]
    if value is None:
        return None
    python = column.type.python_type
    if python is Decimal:
        return Decimal(value)
    if python is date:
        return date.fromisoformat(value)
    if python is datetime:
        return datetime.fromisoformat(value)
    return value


def imports(session: Session, actor: User) -> list[ImportRun]:
    return list(
        session.scalars(
            select(ImportRun)
            .where(ImportRun.organization_id == actor.organization_id)
            .order_by(ImportRun.created_at.desc())
            .limit(20)
        )
    )
