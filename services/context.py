"""What the pane shows beside an email: who these people are and what is open with them.

``context_for_addresses`` returns plain data (``PaneContext``); the Outlook pane renders it
as HTML fragments and the Gmail add-on will render the same object as card JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Iterable

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from services.access import can_edit, can_read_content, get_scoped, require_edit, visible_activities
from services.activities import activity_by_external_id
from services.contacts import account_for_domain
from services.deals import pipeline_stages
from services.models import Account, AccountDomain, Activity, Contact, ContactEmail, FollowUp, Opportunity, Stage, User
from services.signals import DealWarning, days_since, deal_warnings
from services.text import company_from_domain, domain_of, is_public_domain, is_valid_address, name_from_address, normalise_address
from services.types import utcnow

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
    private: bool
    editable: bool


@dataclass
class FollowUpRow:
    id: int
    title: str
    due_at: datetime
    overdue: bool
    owner_name: str
    editable: bool


@dataclass
class UnknownSender:
    address: str
    suggested_name: str
    suggested_company: str | None
    public_domain: bool


@dataclass
class PaneContext:
    addresses: list[str]
    contacts: list[ContactCard]
    accounts: list[AccountCard]
    deals: list[DealRow]
    activities: list[ActivityRow]
    follow_ups: list[FollowUpRow]
    unknown: list[UnknownSender]
    stages: list[Stage]
    logged_activity_id: int | None = None

    @property
    def is_empty(self) -> bool:
        return not self.contacts and not self.accounts


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
    now: datetime | None = None,
) -> PaneContext:
    now = now or utcnow()
    org_id = actor.organization_id
    wanted = clean_addresses(addresses, exclude=actor.email)
    own_domains = set(actor.organization.domains or [])
    wanted = [a for a in wanted if domain_of(a) not in own_domains]

    contacts = list(
        session.scalars(
            select(Contact)
            .join(ContactEmail, ContactEmail.contact_id == Contact.id)
            .where(ContactEmail.organization_id == org_id, ContactEmail.address.in_(wanted), Contact.deleted_at.is_(None))
            .options(selectinload(Contact.emails), selectinload(Contact.account))
            .distinct()
        )
    ) if wanted else []
    known = {e.address for c in contacts for e in c.emails}

    account_ids = {c.account_id for c in contacts if c.account_id}
    domains = {domain_of(a) for a in wanted if not is_public_domain(domain_of(a))}
    if domains:
        account_ids |= set(
            session.scalars(select(AccountDomain.account_id).where(AccountDomain.organization_id == org_id, AccountDomain.domain.in_(domains)))
        )
    accounts = list(
        session.scalars(
            select(Account)
            .where(Account.organization_id == org_id, Account.id.in_(account_ids), Account.deleted_at.is_(None))
            .options(selectinload(Account.domains), selectinload(Account.branches), selectinload(Account.parent))
            .order_by(Account.name)
        )
    ) if account_ids else []
    account_ids = {a.id for a in accounts}

    deals = list(
        session.scalars(
            select(Opportunity)
            .where(
                Opportunity.organization_id == org_id,
                Opportunity.account_id.in_(account_ids),
                Opportunity.status == "open",
                Opportunity.deleted_at.is_(None),
            )
            .options(selectinload(Opportunity.stage), selectinload(Opportunity.owner), selectinload(Opportunity.account))
            .order_by(Opportunity.created_at.desc())
        )
    ) if account_ids else []
    warnings = deal_warnings(session, actor.organization, deals, now)

    contact_ids = {c.id for c in contacts}
    activities = _recent_activities(session, actor, contact_ids, account_ids)

    follow_ups = list(
        session.scalars(
            select(FollowUp)
            .where(
                FollowUp.organization_id == org_id,
                FollowUp.done_at.is_(None),
                FollowUp.deleted_at.is_(None),
                or_(
                    FollowUp.contact_id.in_(contact_ids),
                    FollowUp.account_id.in_(account_ids),
                    FollowUp.opportunity_id.in_([d.id for d in deals]),
                ),
            )
            .options(selectinload(FollowUp.owner))
            .order_by(FollowUp.due_at)
        )
    ) if contact_ids or account_ids else []

    logged = activity_by_external_id(session, org_id, message_id) if message_id else None
    names = {normalise_address(k): v for k, v in (names or {}).items()}
    unknown = [_unknown(session, org_id, a, names.get(a)) for a in wanted if a not in known]

    return PaneContext(
        addresses=wanted,
        contacts=[_contact_card(c) for c in contacts],
        accounts=[_account_card(a) for a in accounts],
        deals=[deal_row(actor, d, now, [w for w in warnings if w.opportunity_id == d.id]) for d in deals],
        activities=[_activity_row(actor, a) for a in activities],
        follow_ups=[
            FollowUpRow(f.id, f.title, f.due_at, f.due_at < now, f.owner.name, can_edit(actor, f.owner)) for f in follow_ups
        ],
        unknown=unknown,
        stages=pipeline_stages(session, org_id),
        logged_activity_id=logged.id if logged and logged.deleted_at is None else None,
    )


def _recent_activities(session: Session, actor: User, contact_ids: set[int], account_ids: set[int]) -> list[Activity]:
    """The latest activities with these contacts or accounts. One query per link, each
    walking its own (organization, link, occurred_at) index: an OR of the two makes the
    planner scan every activity of the organization instead."""
    found: dict[int, Activity] = {}
    for column, ids in ((Activity.account_id, account_ids), (Activity.contact_id, contact_ids)):
        if ids:
            query = (
                select(Activity)
                .where(visible_activities(actor), column.in_(ids))
                .options(selectinload(Activity.owner))
                .order_by(Activity.occurred_at.desc(), Activity.id.desc())
                .limit(RECENT_ACTIVITIES)
            )
            found.update((a.id, a) for a in session.scalars(query))
    return sorted(found.values(), key=lambda a: (a.occurred_at, a.id), reverse=True)[:RECENT_ACTIVITIES]


def _unknown(session: Session, org_id: int, address: str, header_name: str | None) -> UnknownSender:
    domain = domain_of(address)
    public = is_public_domain(domain)
    account = None if public else account_for_domain(session, org_id, domain)
    company = account.name if account else (None if public else company_from_domain(domain))
    return UnknownSender(address, (header_name or "").strip() or name_from_address(address), company, public)


def _contact_card(contact: Contact) -> ContactCard:
    return ContactCard(
        contact.id,
        contact.name,
        contact.title,
        [e.address for e in contact.emails],
        contact.account_id,
        contact.account.name if contact.account else None,
    )


def _account_card(account: Account) -> AccountCard:
    return AccountCard(
        account.id,
        account.name,
        [d.domain for d in account.domains],
        (account.parent.id, account.parent.name) if account.parent else None,
        [(b.id, b.name) for b in account.branches if b.deleted_at is None],
    )


def deal_row(actor: User, deal: Opportunity, now: datetime, warnings: list[DealWarning]) -> DealRow:
    return DealRow(
        deal.id,
        deal.name,
        deal.account.name,
        deal.owner.name,
        deal.amount,
        deal.currency,
        deal.stage_id,
        deal.stage.name,
        days_since(deal.stage_entered_at, now),
        days_since(deal.created_at, now),
        can_edit(actor, deal.owner),
        warnings,
    )


def deal_row_for(session: Session, actor: User, deal_id: int, now: datetime | None = None) -> DealRow:
    """One deal as the pane shows it, for an actor who may change it."""
    now = now or utcnow()
    deal = get_scoped(session, actor, Opportunity, deal_id, "deal")
    require_edit(actor, deal.owner)
    return deal_row(actor, deal, now, deal_warnings(session, actor.organization, [deal], now))


def open_deals_of(session: Session, actor: User, limit: int = 200) -> list[Opportunity]:
    """The actor's own open deals, newest first."""
    return list(session.scalars(
        select(Opportunity)
        .where(Opportunity.organization_id == actor.organization_id, Opportunity.owner_id == actor.id,
               Opportunity.status == "open", Opportunity.deleted_at.is_(None))
        .options(selectinload(Opportunity.stage), selectinload(Opportunity.owner), selectinload(Opportunity.account))
        .order_by(Opportunity.created_at.desc()).limit(limit)
    ))


def _activity_row(actor: User, activity: Activity) -> ActivityRow:
    readable = can_read_content(actor, activity)
    summary = (activity.body_text or "")[:400] if readable else None
    return ActivityRow(
        activity.id,
        activity.type,
        activity.direction,
        activity.occurred_at,
        activity.subject if readable else None,
        summary,
        activity.owner.name,
        activity.outcome,
        activity.rating,
        not readable,
        can_edit(actor, activity.owner),
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
    ids |= set(session.scalars(select(Account.id).where(Account.organization_id == org_id, Account.parent_id == root.id)))
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
    return Timeline(_account_card(account), [_activity_row(actor, a) for a in activities])


def notes_feed(session: Session, actor: User, account_query: str, limit: int = 100) -> list[tuple[str, ActivityRow]]:
    """Notes and activity notes about accounts whose name matches, with their families, for
    anyone on the team to learn from: (account name, activity)."""
    words = account_query.strip()[:100]
    if len(words) < 2:
        return []
    matches = session.scalars(
        select(Account).where(Account.organization_id == actor.organization_id, Account.deleted_at.is_(None),
                              func.lower(Account.name).contains(words.lower(), autoescape=True)).limit(20)
    ).all()
    family = sorted({i for account in matches for i in _family(session, actor.organization_id, account)})
    names = dict(session.execute(select(Account.id, Account.name).where(Account.id.in_(family))).all())
    rows = session.scalars(
        select(Activity)
        .where(visible_activities(actor), Activity.account_id.in_(family), Activity.body_text.is_not(None), Activity.body_text != "")
        .options(selectinload(Activity.owner))
        .order_by(Activity.occurred_at.desc(), Activity.id.desc())
        .limit(limit)
    ).all()
    return [(names.get(a.account_id, ""), _activity_row(actor, a)) for a in rows]
