"""Finding a contact, an account or a deal from the pane: by name, by domain, by address.

The rep types a few letters; the pane lists what matches in their organization, so that the
open mail, a call or a note can go to any deal, not only the sender's. Matching is
case-insensitive and literal (``%`` and ``_`` match themselves), on both back ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from services import search_index
from services.models import Account, AccountDomain, Contact, ContactEmail, Opportunity, Stage, User, live

MIN_LENGTH = 2  # fewer letters match too much to be worth a list
MAX_LENGTH = 100
SHOWN = 6  # per kind: the pane is 320 px wide


@dataclass(frozen=True)
class FoundDeal:
    id: int
    name: str
    account_id: int
    account_name: str
    stage_name: str
    owner_name: str | None


@dataclass(frozen=True)
class FoundAccount:
    id: int
    name: str
    domains: list[str]


@dataclass(frozen=True)
class FoundContact:
    id: int
    name: str
    address: str | None
    account_id: int | None
    account_name: str | None


@dataclass
class SearchResults:
    query: str
    deals: list[FoundDeal] = field(default_factory=list)
    accounts: list[FoundAccount] = field(default_factory=list)
    contacts: list[FoundContact] = field(default_factory=list)
    too_short: bool = False

    @property
    def empty(self) -> bool:
        return not (self.deals or self.accounts or self.contacts)


def clean_query(text: str | None) -> str:
    """The query as matched: spaces collapsed, cut to ``MAX_LENGTH``."""
    return " ".join((text or "").split())[:MAX_LENGTH]


def _containing(session: Session, model: Any, name: str, query: str) -> ColumnElement[bool]:
    """``model``'s column ``name`` contains ``query``, whatever the case, wildcards taken
    literally: through the back end's trigram index (``services.search_index``) where it can
    look it up (PostgreSQL's serves this very ``LIKE``)."""
    if (
        session.get_bind().dialect.name == "sqlite"
        and (ids := search_index.matching_ids(model.__tablename__, name, query)) is not None
    ):
        return model.id.in_(ids)
    return getattr(model, name).icontains(query, autoescape=True)


def search_crm(session: Session, actor: User, text: str | None, shown: int = SHOWN) -> SearchResults:
    """The actor's organization's open deals, live accounts and live contacts matching
    ``text``: deals by their name or their account's (name or domain) or a contact's of
    that account (name or address); accounts by name or domain; contacts by name or address."""
    query = clean_query(text)
    if len(query) < MIN_LENGTH:
        return SearchResults(query, too_short=bool(query))
    org = actor.organization_id
    accounts_matching = select(Account.id).where(
        Account.organization_id == org,
        live(Account),
        or_(
            _containing(session, Account, "name", query),
            Account.id.in_(
                select(AccountDomain.account_id).where(
                    AccountDomain.organization_id == org, _containing(session, AccountDomain, "domain", query)
                )
            ),
        ),
    )
    contacts_matching = select(Contact.id).where(
        Contact.organization_id == org,
        live(Contact),
        or_(
            _containing(session, Contact, "name", query),
            Contact.id.in_(
                select(ContactEmail.contact_id).where(
                    ContactEmail.organization_id == org, _containing(session, ContactEmail, "address", query)
                )
            ),
        ),
    )

    deals = session.execute(
        select(Opportunity.id, Opportunity.name, Account.id, Account.name, Stage.name, User.name)
        .join(Account, Account.id == Opportunity.account_id)
        .join(Stage, Stage.id == Opportunity.stage_id)
        .outerjoin(User, User.id == Opportunity.owner_id)
        .where(
            Opportunity.organization_id == org,
            Opportunity.status == "open",
            live(Opportunity),
            or_(
                _containing(session, Opportunity, "name", query),
                Opportunity.account_id.in_(accounts_matching),
                Opportunity.account_id.in_(select(Contact.account_id).where(Contact.id.in_(contacts_matching))),
            ),
        )
        .order_by(Opportunity.name, Opportunity.id)
        .limit(shown)
    ).all()

    account_rows = session.execute(
        select(Account.id, Account.name)
        .where(Account.id.in_(accounts_matching))
        .order_by(Account.name, Account.id)
        .limit(shown)
    ).all()
    domains: dict[int, list[str]] = {row.id: [] for row in account_rows}
    if domains:
        for account_id, domain in session.execute(
            select(AccountDomain.account_id, AccountDomain.domain)
            .where(AccountDomain.organization_id == org, AccountDomain.account_id.in_(list(domains)))
            .order_by(AccountDomain.id)
        ):
            domains[account_id].append(domain)

    contact_rows = session.execute(
        select(Contact.id, Contact.name, Contact.account_id, Account.name)
        .outerjoin(Account, (Account.id == Contact.account_id) & live(Account))
        .where(Contact.id.in_(contacts_matching))
        .order_by(Contact.name, Contact.id)
        .limit(shown)
    ).all()
    addresses: dict[int, str] = {}
    if contact_rows:
        for contact_id, address in session.execute(
            select(ContactEmail.contact_id, ContactEmail.address)
            .where(ContactEmail.organization_id == org, ContactEmail.contact_id.in_([row.id for row in contact_rows]))
            .order_by(ContactEmail.id)
        ):
            addresses.setdefault(contact_id, address)

    return SearchResults(
        query,
        deals=[FoundDeal(*row) for row in deals],
        accounts=[FoundAccount(row.id, row.name, domains[row.id]) for row in account_rows],
        contacts=[
            FoundContact(row.id, row.name, addresses.get(row.id), row[2] if row[3] is not None else None, row[3])
            for row in contact_rows
        ],
    )
