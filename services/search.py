"""Finding a contact, an account or a deal from the pane: by name, by domain, by address.

The rep types a few letters; the pane lists what matches in their organization, so that the
open mail, a call or a note can go to any deal, not only the sender's. Matching is
case-insensitive and literal (``%`` and ``_`` match themselves), on both back ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Subquery,
    bindparam,
    cast,
    func,
    literal,
    null,
    select,
    union,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from services import search_index
from services.models import Account, AccountDomain, Contact, ContactEmail, Opportunity, Stage, User, live
from services.types import among, one_of

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


def search_crm(session: Session, actor: User, text: str | None, shown: int = SHOWN) -> SearchResults:
    """The actor's organization's open deals, live accounts and live contacts matching
    ``text``: deals by their name or their account's (name or domain) or a contact's of
    that account (name or address); accounts by name or domain; contacts by name or address."""
    query = clean_query(text)
    if len(query) < MIN_LENGTH:
        return SearchResults(query, too_short=bool(query))
    org, connection = actor.organization_id, session.connection()
    dialect = connection.dialect.name
    phrase = search_index.phrase(query)  # None: too short for a trigram index, on either back end
    found = connection.execute(
        _search_statement(dialect, phrase is not None, shown),
        {"org": org, "phrase": phrase}
        if phrase and dialect == "sqlite"
        else {"org": org, "pattern": f"%{_escaped(query)}%"},
    )
    results = SearchResults(query)
    for row in found:
        if row.kind == "deal":
            results.deals.append(FoundDeal(row.id, row.name, row.account_id, row.account_name, row.stage, row.owner))
        elif row.kind == "account":
            results.accounts.append(FoundAccount(row.id, row.name, []))
        else:
            account_id = row.account_id if row.account_name is not None else None
            results.contacts.append(FoundContact(row.id, row.name, None, account_id, row.account_name))

    if results.accounts:
        domains = {account.id: account.domains for account in results.accounts}
        for account_id, domain in connection.execute(_DOMAINS, {"org": org, "ids": list(domains)}):
            domains[account_id].append(domain)
    if results.contacts:
        addresses: dict[int, str] = {}
        for contact_id, address in connection.execute(
            _ADDRESSES, {"org": org, "ids": [c.id for c in results.contacts]}
        ):
            addresses.setdefault(contact_id, address)
        results.contacts = [replace(c, address=addresses.get(c.id)) for c in results.contacts]
    return results


ESCAPE = "/"
# The accounts' domains and the contacts' first addresses, for those listed.
_DOMAINS = (
    select(AccountDomain.account_id, AccountDomain.domain)
    .where(AccountDomain.organization_id == bindparam("org"), one_of(AccountDomain.account_id, bindparam("ids")))
    .order_by(AccountDomain.id)
)
_ADDRESSES = (
    select(ContactEmail.contact_id, ContactEmail.address)
    .where(ContactEmail.organization_id == bindparam("org"), one_of(ContactEmail.contact_id, bindparam("ids")))
    .order_by(ContactEmail.id)
)


def _escaped(query: str) -> str:
    """``query`` with ``LIKE``'s wildcards (and the escape itself) taken literally."""
    return query.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")


def _holding(model: Any, field: str, fts: bool, key: Any = None) -> Select[Any]:
    """The ids (or ``key``) of ``model``'s rows whose ``field`` holds the query, whatever the
    case, as one column named ``id``.

    ``fts`` (SQLite, three letters or more): looked up in the column's trigram index by the
    bound ``phrase`` (``services.search_index``). Its answer holds every organization's rows:
    the statement keeps its own by the rows these ids lead to, each read once by its key,
    rather than through the organization's index, which reads every row of the organization.
    Else the organization's rows matched by the bound ``pattern``; PostgreSQL's trigram index
    serves this very ``lower(column) LIKE``.
    """
    key = model.id if key is None else key
    if fts:
        found = search_index.matching_ids(model.__tablename__)
        return found if key is model.id else select(key.label("id")).where(model.id.in_(found))
    return select(key.label("id")).where(
        model.organization_id == bindparam("org"),
        func.lower(getattr(model, field)).like(func.lower(bindparam("pattern")), escape=ESCAPE),
    )


@cache
def _search_statement(dialect: str, indexed: bool, shown: int) -> Select[Any]:
    """The search, one statement for all three kinds, built once per back end and per lookup
    (building it cost as much as running it). ``indexed``: the query is long enough for the
    trigram indexes (``search_index.phrase``). Bound: ``org``, and ``phrase`` or ``pattern``
    (``_holding``). The accounts and the contacts found are looked up once (two common table
    expressions) and serve both their own list and the deals'. Its rows: ``_first``'s, in kind
    then place."""
    org = bindparam("org")
    fts = indexed and dialect == "sqlite"
    # On PostgreSQL, what an index found is few enough to read row by row by its key (``among``);
    # two letters match too many (23,000 of 45,000 contacts for "an"), which it hashes.
    by_key = indexed and dialect != "sqlite"

    def one_of_found(key: Any, ids: Any) -> ColumnElement[bool]:
        return among(key, ids) if by_key else key.in_(ids)

    def among_found(query: Select[Any], key: Any, ids: Any) -> Select[Any]:
        """``query``'s rows whose ``key`` is one of the ``ids`` found: on SQLite by a join the
        planner drives from the ids (with ``IN`` it read the organization's index instead)."""
        if dialect == "sqlite":
            found = ids.subquery()
            return query.join(found, found.c.id == key)
        return query.where(one_of_found(key, ids))

    accounts = among_found(
        select(Account.id, Account.name).where(Account.organization_id == org, live(Account)),
        Account.id,
        union(_holding(Account, "name", fts), _holding(AccountDomain, "domain", fts, key=AccountDomain.account_id)),
    ).cte("found_accounts")
    contacts = among_found(
        select(Contact.id, Contact.name, Contact.account_id).where(Contact.organization_id == org, live(Contact)),
        Contact.id,
        union(_holding(Contact, "name", fts), _holding(ContactEmail, "address", fts, key=ContactEmail.contact_id)),
    ).cte("found_contacts")
    # A deal by its own name, or by its account's matches (those accounts' deals, through the
    # deals' account index).
    by_deal = union(
        _holding(Opportunity, "name", fts),
        select(Opportunity.id).where(
            Opportunity.organization_id == org,
            one_of_found(Opportunity.account_id, union(select(accounts.c.id), select(contacts.c.account_id))),
            Opportunity.status == "open",
        ),
    )
    owner = aliased(User)
    account_of_contact = aliased(Account)
    # The contacts shown, then their accounts' names: not a name for each of thousands found.
    first = select(contacts).order_by(contacts.c.name, contacts.c.id).limit(shown).subquery()
    kinds = (
        _first(
            "deal",
            among_found(
                select(Opportunity.id, Opportunity.name, Account.id, Account.name, Stage.name, owner.name).select_from(
                    Opportunity
                ),
                Opportunity.id,
                by_deal,
            )
            .join(Account, Account.id == Opportunity.account_id)
            .join(Stage, Stage.id == Opportunity.stage_id)
            .outerjoin(owner, owner.id == Opportunity.owner_id)
            .where(Opportunity.organization_id == org, Opportunity.status == "open", live(Opportunity)),
            (Opportunity.name, Opportunity.id),
            shown,
        ),
        _first(
            "account",
            select(accounts.c.id, accounts.c.name, cast(null(), Integer), null(), null(), null()),
            (accounts.c.name, accounts.c.id),
            shown,
        ),
        _first(
            "contact",
            select(first.c.id, first.c.name, first.c.account_id, account_of_contact.name, null(), null())
            .select_from(first)
            .outerjoin(account_of_contact, (account_of_contact.id == first.c.account_id) & live(account_of_contact)),
            (first.c.name, first.c.id),
            shown,
        ),
    )
    found = union_all(*(select(kind) for kind in kinds)).subquery()
    return select(found).order_by(found.c.kind, found.c.place)


def _first(kind: str, rows: Select[Any], order: tuple[Any, ...], shown: int) -> Subquery:
    """The first ``shown`` of ``rows`` in ``order``, in the one shape all three kinds share:
    ``kind``, ``place`` (the row's rank in that order, which the union keeps), then ``id``,
    ``name``, ``account_id``, ``account_name``, ``stage``, ``owner``."""
    columns = ("id", "name", "account_id", "account_name", "stage", "owner")
    return (
        rows.with_only_columns(
            literal(kind).label("kind"),
            func.row_number().over(order_by=order).label("place"),
            *(column.label(name) for column, name in zip(rows.selected_columns, columns, strict=True)),
            maintain_column_froms=True,
        )
        .order_by(*order)
        .limit(shown)
        .subquery()
    )
