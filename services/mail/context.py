"""What the pane shows beside an email: who these people are and what is open with them.

``context_for_addresses`` returns plain data (``PaneContext``); the Outlook pane renders it
as HTML fragments and the Gmail add-on will render the same object as card JSON.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable

from sqlalchemy import bindparam, func, or_, select, union_all
from sqlalchemy.orm import Session, selectinload

from services.access import can_edit, can_read_content, get_scoped, require_edit, seen_by, visible_activities
from services.mail.contacts import account_for_domain, last_thread_deal
from services import privacy
from services.deals import open_deals, pipeline_stages
from services.models import (
    Account,
    AccountDomain,
    Activity,
    Contact,
    ContactEmail,
    FollowUp,
    Lead,
    LeadArrival,
    LeadSource,
    Opportunity,
    User,
    live,
)
from services.health import Health, healths
from services.sentiment import reads_as
from services.signals import DealFacts, DealWarning, OpenDeal, days_since, deal_warnings
from services.mail.text import (
    company_from_domain,
    domain_of,
    is_automated_address,
    sender_problem,
    is_public_domain,
    is_valid_address,
    name_from_address,
    normalise_address,
)
from services.types import as_utc, utcnow
from services.users import PEOPLE, Person

RECENT_ACTIVITIES = 8
MAX_ADDRESSES = 50


@dataclass
class ContactCard:
    id: int
    name: str
    title: str | None
    addresses: list[str]
    account_id: int | None
    account_name: str | None


@dataclass
class AccountCard:
    id: int
    name: str
    domains: list[str]
    parent: tuple[int, str] | None
    branches: list[tuple[int, str]]


@dataclass
class DealRow:
    id: int
    name: str
    account_name: str
    owner_name: str
    amount: Decimal
    currency: str
    stage_id: int
    stage_name: str
    days_in_stage: int
    age_days: int
    editable: bool
    warnings: list[DealWarning] = field(default_factory=list)
    health: Health | None = None  # ``services.health``, worked out as the pane shows it


@dataclass
class ActivityRow:
    id: int
    type: str
    direction: str
    occurred_at: datetime
    subject: str | None
    summary: str | None
    owner_name: str
    outcome: str | None
    rating: int | None
    private: bool  # its content is hidden from this reader (it is private, and not theirs)
    editable: bool
    own: bool = False  # the reader's own: they alone may mark it private or shared
    marked_private: bool = False
    # Its sentiment (``services.sentiment``): the score, and whether it was worked out at all
    # (scored with no score: not English, or nothing of the customer's). Hidden with its text.
    sentiment: float | None = None
    scored: bool = False

    @property
    def mood(self) -> str | None:
        """The score in words for the pane ("warm +0.62", "not scored"); None when never scored."""
        if not self.scored:
            return None
        return reads_as(self.sentiment) + (f" {self.sentiment:+.2f}" if self.sentiment is not None else "")

    @property
    def mood_kind(self) -> str:
        return reads_as(self.sentiment).replace(" ", "-")


@dataclass
class FollowUpRow:
    id: int
    title: str
    due_at: datetime
    overdue: bool
    owner_name: str  # "" where they are all the reader's own (My day)
    editable: bool
    account_id: int | None = None  # where its title opens (My day: its account's timeline)


@dataclass
class LeadCard:
    """A lead with the sender's address (from a web form, an ad, a WhatsApp provider), with what
    its latest posts said: the rep reads the enquiry beside the mail."""

    id: int
    name: str
    company: str | None
    status: str
    source: str
    owner_name: str | None
    created_at: datetime
    arrivals: list[tuple[datetime, str | None, str | None]]  # (when, the source's name, the message), newest first


@dataclass
class UnknownSender:
    address: str
    suggested_name: str
    suggested_company: str | None
    public_domain: bool


NO_MESSAGE_ID = "This message has no Message-ID, so it cannot be logged."
NOBODY_ELSE = "Nobody but you is on this message: nothing to log."


@dataclass
class PaneContext:
    addresses: list[str]
    contacts: list[ContactCard]
    accounts: list[AccountCard]
    deals: list[DealRow]
    activities: list[ActivityRow]
    follow_ups: list[FollowUpRow]
    unknown: list[UnknownSender]
    stages: list[Any]  # services.deals.pipeline_stages rows
    leads: list[LeadCard] = field(default_factory=list)
    logged_activity_id: int | None = None
    thread_deal_id: int | None = None  # the open deal the rep chose for an earlier mail of this thread
    latest_deal_id: int | None = None  # of several open deals, the one with the latest activity
    # What the rep chose from a search (``services.search``) for this mail: an account, shown
    # first with its open deals, and maybe one of them, which the pane's forms then preselect.
    chosen_account_id: int | None = None
    chosen_deal_id: int | None = None
    blocked: bool = False  # a participant is on a block list: nothing of the mail is logged (``services.privacy``)
    internal: bool = False  # everyone on it is on the organization's own domains, and it does not log internal mail
    anyone_else: bool = True  # anyone on it but the rep, at an address that is one

    @property
    def is_empty(self) -> bool:
        return not self.contacts and not self.accounts

    @property
    def default_deal_id(self) -> int | None:
        """The deal a form offers first: the one chosen from a search, else the thread's, else
        (of several) the one with the latest activity. A rep's "None" stays theirs to choose."""
        return self.chosen_deal_id or self.thread_deal_id or self.latest_deal_id

    def nothing_to_log(self, item_type: str, message_id: str | None, sender: str) -> str | None:
        """Why this mail (``item_type`` "message") or meeting ("appointment") offers nothing to
        log, said the same in the pane and the Gmail card; None when it may be logged. In this
        order: a sender that is no one to log (a bounce, a no-reply or a broken address), a
        participant on a block list, the organization's own mail, no Message-ID to log it under,
        nobody on it but the rep (or only addresses that are no address)."""
        if item_type == "message" and (problem := sender_problem(sender)):
            return problem
        if self.blocked and item_type in ("message", "appointment"):
            return privacy.BLOCKED_MESSAGE
        if item_type != "message":
            return None
        if self.internal:
            return privacy.INTERNAL_MESSAGE
        if not message_id:
            return NO_MESSAGE_ID
        if not self.anyone_else:
            return NOBODY_ELSE
        return None


# -- the context's statements, built once: building a statement costs more than running it -------


def _many(name: str) -> Any:
    return bindparam(name, expanding=True)


_ORG = bindparam("org")
# The live contacts having any of the addresses, each with all its addresses: one row per address.
_CONTACTS = (
    select(Contact.id, Contact.name, Contact.title, Contact.account_id, ContactEmail.address)
    .join(ContactEmail, ContactEmail.contact_id == Contact.id)
    .where(
        Contact.organization_id == _ORG,
        live(Contact),
        Contact.id.in_(
            select(ContactEmail.contact_id).where(
                ContactEmail.organization_id == _ORG, ContactEmail.address.in_(_many("addresses"))
            )
        ),
    )
    .order_by(Contact.id, ContactEmail.id)
)
# The contacts' accounts and the accounts owning any of the domains, as one set of ids: "id IN
# ids OR id IN (domains' accounts)" made PostgreSQL read every account of the organization
# (2 ms at scale 30); the set is two index reads.
_ACCOUNTS = select(Account.id, Account.name, Account.parent_id, Account.deleted_at).where(
    Account.organization_id == _ORG,
    Account.id.in_(
        union_all(
            select(Account.id).where(Account.organization_id == _ORG, Account.id.in_(_many("ids"))),
            select(AccountDomain.account_id).where(
                AccountDomain.organization_id == _ORG, AccountDomain.domain.in_(_many("domains"))
            ),
        )
    ),
)
_ACCOUNT_DOMAINS = (
    select(AccountDomain.account_id, AccountDomain.domain)
    .where(AccountDomain.organization_id == _ORG, AccountDomain.account_id.in_(_many("ids")))
    .order_by(AccountDomain.id)
)
_FAMILY = (
    select(Account.id, Account.name, Account.parent_id, Account.deleted_at)
    .where(Account.organization_id == _ORG, Account.id.in_(_many("parents")) | Account.parent_id.in_(_many("ids")))
    .order_by(Account.id)
)
_FOLLOW_UPS = (
    select(FollowUp.id, FollowUp.title, FollowUp.due_at, FollowUp.owner_id)
    .where(
        FollowUp.organization_id == _ORG,
        FollowUp.done_at.is_(None),
        live(FollowUp),
        or_(
            FollowUp.contact_id.in_(_many("contacts")),
            FollowUp.account_id.in_(_many("accounts")),
            FollowUp.opportunity_id.in_(_many("deals")),
        ),
    )
    .order_by(FollowUp.due_at)
)
_OWNERS = PEOPLE.where(User.id.in_(_many("ids")))
_LEADS = (
    select(Lead.id, Lead.name, Lead.company, Lead.status, Lead.source, User.name.label("owner_name"), Lead.created_at)
    .outerjoin(User, User.id == Lead.owner_id)
    .where(Lead.organization_id == _ORG, live(Lead), Lead.email.in_(_many("addresses")))
    .order_by(Lead.id)
    .limit(3)
)
ARRIVALS_SHOWN = 3  # a lead's latest posts shown in the pane
_NEWEST = func.row_number().over(
    partition_by=LeadArrival.lead_id, order_by=(LeadArrival.received_at.desc(), LeadArrival.id.desc())
)
_POSTED = (
    select(
        LeadArrival.lead_id,
        LeadArrival.received_at,
        LeadSource.name.label("source_name"),
        LeadArrival.message,
        _NEWEST.label("newest"),
    )
    .outerjoin(LeadSource, LeadSource.id == LeadArrival.source_id)
    .where(LeadArrival.organization_id == _ORG, LeadArrival.lead_id.in_(_many("leads")))
    .subquery()
)
# Each lead's latest ``ARRIVALS_SHOWN``, newest first (a busy lead does not crowd out the others).
_ARRIVALS = (
    select(_POSTED.c.lead_id, _POSTED.c.received_at, _POSTED.c.source_name, _POSTED.c.message)
    .where(_POSTED.c.newest <= ARRIVALS_SHOWN)
    .order_by(_POSTED.c.lead_id, _POSTED.c.newest)
)
_OPEN_DEAL_ACCOUNT = select(Opportunity.account_id).where(
    Opportunity.organization_id == _ORG,
    Opportunity.id == bindparam("id"),
    Opportunity.status == "open",
    live(Opportunity),
)
_LOGGED = select(Activity.id, Activity.deleted_at).where(
    Activity.organization_id == _ORG, Activity.external_id == bindparam("external_id")
)
ACTIVITY_COLUMNS = (
    Activity.id,
    Activity.type,
    Activity.direction,
    Activity.occurred_at,
    Activity.subject,
    func.substr(Activity.body_text, 1, 400).label("body_text"),
    Activity.owner_id,
    Activity.outcome,
    Activity.rating,
    Activity.is_private,
    Activity.sentiment,
    Activity.sentiment_scored_at,
)
# The latest activities with some accounts (or contacts), as each kind of reader may list them
# (``access.visible_activities``: an admin all, a member of a team the team's, anyone else their own).
_SEEN = {
    "all": seen_by("admin", None, None),
    "team": seen_by("rep", bindparam("me"), bindparam("team")),
    "own": seen_by("rep", bindparam("me"), None),
}
_RECENT = {
    (link, seen): select(*ACTIVITY_COLUMNS)
    .where(Activity.organization_id == _ORG, live(Activity), condition, column.in_(_many("ids")))
    .order_by(Activity.occurred_at.desc(), Activity.id.desc())
    .limit(bindparam("limit"))
    for link, column in (("account", Activity.account_id), ("contact", Activity.contact_id))
    for seen, condition in _SEEN.items()
}


def clean_addresses(addresses: Iterable[str], *, exclude: str | None = None) -> list[str]:
    """Valid, normalised, de-duplicated addresses in their order; the mailbox owner dropped."""
    seen: list[str] = []
    for raw in addresses:
        address = normalise_address(raw or "")
        if is_valid_address(address) and address != exclude and address not in seen:
            seen.append(address)
    return seen[:MAX_ADDRESSES]


def context_for_addresses(
    session: Session,
    actor: User,
    addresses: Iterable[str],
    *,
    names: dict[str, str] | None = None,
    message_id: str | None = None,
    conversation_id: str | None = None,
    chosen_account_id: int | None = None,
    chosen_deal_id: int | None = None,
    now: datetime | None = None,
) -> PaneContext:
    """Who these addresses are and what is open with them. Read as plain column rows, not ORM
    objects: the pane and the Gmail card ask this for every mail opened, so its cost is the
    cost of opening a mail."""
    now = now or utcnow()
    org_id = actor.organization_id
    addresses = list(addresses)
    wanted = clean_addresses(addresses, exclude=actor.email)
    anyone_else = bool(wanted)
    own_domains = set(actor.organization.domains or [])
    wanted = [a for a in wanted if domain_of(a) not in own_domains]

    contacts: dict[int, Any] = {}
    emails: dict[int, list[str]] = defaultdict(list)
    for row in session.execute(_CONTACTS, {"org": org_id, "addresses": wanted}) if wanted else ():
        contacts.setdefault(row.id, row)
        emails[row.id].append(row.address)
    contact_ids = set(contacts)
    known = {address for found in emails.values() for address in found}

    domains = {domain_of(a) for a in wanted if not is_public_domain(domain_of(a))}
    # A deal chosen from a search brings its account; either is ignored unless it is a live one
    # of the organization (the deal open).
    if chosen_deal_id is not None:
        chosen_account_id = session.scalar(_OPEN_DEAL_ACCOUNT, {"org": org_id, "id": chosen_deal_id})
        chosen_deal_id = chosen_deal_id if chosen_account_id is not None else None
    related = {c.account_id for c in contacts.values() if c.account_id} | (
        {chosen_account_id} if chosen_account_id else set()
    )
    accounts, account_names = _account_cards(session, org_id, related, domains)
    if chosen_account_id not in {a.id for a in accounts}:
        chosen_account_id = chosen_deal_id = None
    accounts.sort(key=lambda a: a.id != chosen_account_id)  # the chosen one first: the forms attach to it
    account_ids = {a.id for a in accounts}

    stages = pipeline_stages(session, org_id)
    deals = open_deals(session, actor.organization, {s.id: s for s in stages}, now, accounts=account_ids)
    warnings = deal_warnings(session, actor.organization, deals, now)
    health = healths(session, actor.organization, [d.id for d in deals], now)
    activities = _recent_activities(session, actor, contact_ids, account_ids)
    follow_ups = (
        session.execute(
            _FOLLOW_UPS,
            {
                "org": org_id,
                "contacts": list(contact_ids),
                "accounts": list(account_ids),
                "deals": [d.id for d in deals],
            },
        ).all()
        if contact_ids or account_ids
        else []
    )
    owners = _owners(
        session,
        actor,
        {d.owner_id for d in deals} | {a.owner_id for a in activities} | {f.owner_id for f in follow_ups},
    )

    logged = session.execute(_LOGGED, {"org": org_id, "external_id": message_id}).first() if message_id else None
    names = {normalise_address(k): v for k, v in (names or {}).items()}
    # Nobody to add behind a bounce or a no-reply address.
    unknown = [
        _unknown(session, org_id, a, names.get(a)) for a in wanted if a not in known and not is_automated_address(a)
    ]
    leads = _lead_cards(session, org_id, wanted) if wanted else []

    return PaneContext(
        addresses=wanted,
        contacts=[
            ContactCard(c.id, c.name, c.title, emails[c.id], c.account_id, account_names.get(c.account_id))
            for c in contacts.values()
        ],
        accounts=accounts,
        deals=[
            deal_row(
                actor,
                d,
                now,
                [w for w in warnings if w.opportunity_id == d.id],
                owners[d.owner_id],
                d.account_name,
                health.get(d.id),
            )
            for d in deals
        ],
        activities=[activity_row(actor, a, owners[a.owner_id]) for a in activities],
        follow_ups=[
            FollowUpRow(
                f.id, f.title, f.due_at, f.due_at < now, owners[f.owner_id].name, can_edit(actor, owners[f.owner_id])
            )
            for f in follow_ups
        ],
        unknown=unknown,
        stages=stages,
        leads=leads,
        logged_activity_id=logged.id if logged and logged.deleted_at is None else None,
        thread_deal_id=_thread_deal(session, org_id, conversation_id, {d.id for d in deals})
        if conversation_id and len(deals) > 1
        else None,
        latest_deal_id=session.scalar(_LATEST_DEAL, {"ids": [d.id for d in deals]}) if len(deals) > 1 else None,
        chosen_account_id=chosen_account_id,
        chosen_deal_id=chosen_deal_id,
        blocked=privacy.blocked(session, actor, addresses),
        internal=privacy.is_internal(actor.organization, addresses)
        and not actor.organization.setting("log_internal_mail"),
        anyone_else=anyone_else,
    )


def _lead_cards(session: Session, org_id: int, addresses: list[str]) -> list[LeadCard]:
    """The live leads with these addresses, each with its latest arrivals."""
    rows = session.execute(_LEADS, {"org": org_id, "addresses": addresses}).all()
    if not rows:
        return []
    posted: dict[int, list[tuple[datetime, str | None, str | None]]] = defaultdict(list)
    for lead_id, received_at, source_name, message in session.execute(
        _ARRIVALS, {"org": org_id, "leads": [r.id for r in rows]}
    ):
        posted[lead_id].append((as_utc(received_at), source_name, message))
    return [
        LeadCard(r.id, r.name, r.company, r.status, r.source, r.owner_name, as_utc(r.created_at), posted[r.id])
        for r in rows
    ]


# The deal of the thread's latest logged mail that has one. Built once; bind "org" and "thread".
_LATEST_DEAL = (
    select(Opportunity.id)
    .where(Opportunity.id.in_(_many("ids")))
    .order_by(Opportunity.last_activity_at.desc().nulls_last(), Opportunity.id.desc())
    .limit(1)
)


def _thread_deal(session: Session, org_id: int, conversation_id: str, open_ids: set[int]) -> int | None:
    """The deal the rep chose for this thread before, if it is still one of the open deals shown."""
    deal_id = last_thread_deal(session, org_id, conversation_id)
    return deal_id if deal_id in open_ids else None


def _owners(session: Session, actor: User, ids: set[int]) -> dict[int, Person]:
    rows = session.execute(_OWNERS, {"org": actor.organization_id, "ids": list(ids)}) if ids else ()
    return {row.id: Person(*row) for row in rows}


def _account_cards(
    session: Session, org_id: int, ids: set[int], domains: set[str]
) -> tuple[list[AccountCard], dict[int, str]]:
    """The live accounts among ``ids`` and those owning any of ``domains``, as cards (name
    order), and the names of all of them (a contact's account shows by name even once deleted)."""
    if not ids and not domains:
        return [], {}
    rows = session.execute(_ACCOUNTS, {"org": org_id, "ids": list(ids), "domains": list(domains)}).all()
    names = {row.id: row.name for row in rows}
    live = sorted((row for row in rows if row.deleted_at is None), key=lambda row: (row.name, row.id))
    live_ids = [row.id for row in live]
    parent_ids = {row.parent_id for row in live if row.parent_id}
    domains: dict[int, list[str]] = defaultdict(list)
    for account_id, domain in session.execute(_ACCOUNT_DOMAINS, {"org": org_id, "ids": live_ids}) if live_ids else ():
        domains[account_id].append(domain)
    # The parents and the live branches, in one read.
    family = (
        session.execute(_FAMILY, {"org": org_id, "parents": list(parent_ids), "ids": live_ids}).all()
        if live_ids
        else []
    )
    relatives = {row.id: row.name for row in family}
    branches: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for row in family:
        if row.parent_id in live_ids and row.deleted_at is None:
            branches[row.parent_id].append((row.id, row.name))
    cards = [
        AccountCard(
            row.id,
            row.name,
            domains[row.id],
            (row.parent_id, relatives.get(row.parent_id, names.get(row.parent_id, ""))) if row.parent_id else None,
            branches[row.id],
        )
        for row in live
    ]
    return cards, names


def _recent_activities(session: Session, actor: User, contact_ids: set[int], account_ids: set[int]) -> list[Any]:
    """The latest activities with these contacts or accounts. One query per link, each
    walking its own (organization, link, occurred_at) index: an OR of the two makes the
    planner scan every activity of the organization instead. Only the start of each body is
    read: the pane shows 400 characters of it."""
    found: dict[int, Any] = {}
    seen = "all" if actor.role == "admin" else ("team" if actor.team_id else "own")
    for link, ids in (("account", account_ids), ("contact", contact_ids)):
        if ids:
            rows = session.execute(
                _RECENT[(link, seen)],
                {
                    "org": actor.organization_id,
                    "me": actor.id,
                    "team": actor.team_id,
                    "ids": list(ids),
                    "limit": RECENT_ACTIVITIES,
                },
            )
            found.update((row.id, row) for row in rows)
    return sorted(found.values(), key=lambda a: (a.occurred_at, a.id), reverse=True)[:RECENT_ACTIVITIES]


def _unknown(session: Session, org_id: int, address: str, header_name: str | None) -> UnknownSender:
    domain = domain_of(address)
    public = is_public_domain(domain)
    account = None if public else account_for_domain(session, org_id, domain)
    company = account.name if account else (None if public else company_from_domain(domain))
    return UnknownSender(address, (header_name or "").strip() or name_from_address(address), company, public)


def _account_card(account: Account) -> AccountCard:
    return AccountCard(
        account.id,
        account.name,
        [d.domain for d in account.domains],
        (account.parent.id, account.parent.name) if account.parent else None,
        [(b.id, b.name) for b in account.branches if b.deleted_at is None],
    )


def deal_row(
    actor: User,
    deal: DealFacts,
    now: datetime,
    warnings: list[DealWarning],
    owner: User | Person,
    account_name: str,
    health: Health | None = None,
) -> DealRow:
    return DealRow(
        deal.id,
        deal.name,
        account_name,
        owner.name,
        deal.amount,
        deal.currency,
        deal.stage.id,
        deal.stage.name,
        days_since(deal.stage_entered_at, now),
        days_since(deal.created_at, now),
        can_edit(actor, owner),
        warnings,
        health,
    )


def deal_row_for(session: Session, actor: User, deal_id: int, now: datetime | None = None) -> DealRow:
    """One deal as the pane shows it, for an actor who may change it."""
    now = now or utcnow()
    deal = get_scoped(session, actor, Opportunity, deal_id, "deal")
    require_edit(actor, deal.owner)
    return _row_of(session, actor, deal, now)


def deal_card(session: Session, actor: User, deal_id: int, now: datetime | None = None) -> DealRow | None:
    """One open deal of the actor's organization as the pane lists it (``editable`` says whether
    the actor may change it); None once it is closed."""
    deal = get_scoped(session, actor, Opportunity, deal_id, "deal")
    return _row_of(session, actor, deal, now or utcnow()) if deal.status == "open" else None


def _row_of(session: Session, actor: User, deal: Opportunity, now: datetime) -> DealRow:
    # As the pane's list has it: the stage from the transaction's stages, not loaded again.
    stage = next(s for s in pipeline_stages(session, actor.organization_id) if s.id == deal.stage_id)
    row = OpenDeal(
        deal.id,
        deal.name,
        deal.amount,
        deal.status,
        deal.created_at,
        deal.stage_entered_at,
        stage,
        deal.account.name,
        deal.owner_id,
        deal.currency,
    )
    return deal_row(
        actor,
        row,
        now,
        deal_warnings(session, actor.organization, [row], now),
        deal.owner,
        row.account_name,
        healths(session, actor.organization, [deal.id], now).get(deal.id) if deal.status == "open" else None,
    )


def activity_row_for(session: Session, actor: User, activity_id: int) -> ActivityRow:
    """One activity of the actor's organization as the views list it (its content hidden where
    it is another's private one); NotFound when it is not there or was taken back."""
    activity = get_scoped(session, actor, Activity, activity_id, "activity")
    return activity_row(actor, activity, activity.owner)


def activity_row(actor: User, activity: Any, owner: User | Person) -> ActivityRow:
    """An activity (an ORM object or a row of ``ACTIVITY_COLUMNS``) as the views list it."""
    readable = can_read_content(actor, activity)
    summary = (activity.body_text or "")[:400] if readable else None
    return ActivityRow(
        activity.id,
        activity.type,
        activity.direction,
        activity.occurred_at,
        activity.subject if readable else None,
        summary,
        owner.name,
        activity.outcome,
        activity.rating,
        not readable,
        can_edit(actor, owner),
        owner.id == actor.id,
        bool(activity.is_private),
        activity.sentiment if readable else None,
        readable and activity.sentiment_scored_at is not None,
    )


# -- timelines and the notes feed ------------------------------------------------------------------


@dataclass
class Timeline:
    account: AccountCard
    activities: list[ActivityRow]


def _family(session: Session, org_id: int, account: Account) -> list[int]:
    """An account with its parent and branches: knowledge about one client is shared across
    its branches."""
    root = account.parent or account
    ids = {root.id, account.id}
    ids |= set(
        session.scalars(select(Account.id).where(Account.organization_id == org_id, Account.parent_id == root.id))
    )
    return sorted(ids)


def account_timeline(session: Session, actor: User, account_id: int, limit: int = 50) -> Timeline:
    """One account's activities and notes (with its parent's and branches'), newest first, as
    far as the actor may read them."""
    account = get_scoped(session, actor, Account, account_id, "account")
    family = _family(session, actor.organization_id, account)
    activities = session.scalars(
        select(Activity)
        .where(visible_activities(actor), Activity.account_id.in_(family))
        .options(selectinload(Activity.owner))
        .order_by(Activity.occurred_at.desc(), Activity.id.desc())
        .limit(limit)
    ).all()
    return Timeline(_account_card(account), [activity_row(actor, a, a.owner) for a in activities])


def notes_feed(session: Session, actor: User, account_query: str, limit: int = 100) -> list[tuple[str, ActivityRow]]:
    """Notes and activity notes about accounts whose name matches, with their families, for
    anyone on the team to learn from: (account name, activity)."""
    words = account_query.strip()[:100]
    if len(words) < 2:
        return []
    matches = session.scalars(
        select(Account)
        .where(
            Account.organization_id == actor.organization_id,
            live(Account),
            func.lower(Account.name).contains(words.lower(), autoescape=True),
        )
        .limit(20)
    ).all()
    family = sorted({i for account in matches for i in _family(session, actor.organization_id, account)})
    names = dict(session.execute(select(Account.id, Account.name).where(Account.id.in_(family))).all())
    rows = session.scalars(
        select(Activity)
        .where(
            visible_activities(actor),
            Activity.account_id.in_(family),
            Activity.body_text.is_not(None),
            Activity.body_text != "",
        )
        .options(selectinload(Activity.owner))
        .order_by(Activity.occurred_at.desc(), Activity.id.desc())
        .limit(limit)
    ).all()
    return [(names.get(a.account_id, ""), activity_row(actor, a, a.owner)) for a in rows]
