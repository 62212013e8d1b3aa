"""Contacts and accounts: creating them, and finding them by address and domain."""

from __future__ import annotations

from typing import Any, Mapping

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.access import get_scoped
from services.audit import record_event
from services.deals import create_opportunity, open_stage
from services.errors import DomainError
from services.models import (
    Account,
    AccountDomain,
    Activity,
    Contact,
    ContactEmail,
    ContactPhone,
    Opportunity,
    User,
    live,
)
from services.schemas import AccountSchema, ContactSchema, NewFromSenderSchema, load
from services.mail.text import company_from_domain, domain_of, is_public_domain, phone_key


def account_for_domain(session: Session, organization_id: int, domain: str) -> Account | None:
    return session.scalar(
        select(Account)
        .join(AccountDomain, AccountDomain.account_id == Account.id)
        .where(AccountDomain.organization_id == organization_id, AccountDomain.domain == domain, live(Account))
    )


_THREAD_DEAL = (
    select(Activity.opportunity_id)
    .where(
        Activity.organization_id == bindparam("org"),
        Activity.conversation_id == bindparam("thread"),
        live(Activity),
        Activity.opportunity_id.is_not(None),
    )
    .order_by(Activity.occurred_at.desc(), Activity.id.desc())
    .limit(1)
)


def last_thread_deal(session: Session, organization_id: int, conversation_id: str) -> int | None:
    """The deal a mail of this thread was last logged to (open or not: the caller decides)."""
    return session.scalar(_THREAD_DEAL, {"org": organization_id, "thread": conversation_id})


def contact_for_address(session: Session, organization_id: int, address: str) -> Contact | None:
    return contacts_for_addresses(session, organization_id, [address]).get(address)


def contacts_for_addresses(session: Session, organization_id: int, addresses: list[str]) -> dict[str, Contact]:
    """The live contacts of these addresses, by address: one statement for a mail's every participant."""
    if not addresses:
        return {}
    rows = session.execute(
        select(ContactEmail.address, Contact)
        .join(Contact, Contact.id == ContactEmail.contact_id)
        .where(ContactEmail.organization_id == organization_id, ContactEmail.address.in_(set(addresses)), live(Contact))
    )
    return {address: contact for address, contact in rows}


def create_account(session: Session, actor: User, data: Mapping[str, Any]) -> Account:
    values = load(AccountSchema, data)
    domain = (values.get("domain") or "").strip().lower() or None
    if domain and is_public_domain(domain):
        raise DomainError(f"{domain} is a public mail domain, not a company's.", {"domain": ["Public mail domain."]})
    if domain and account_for_domain(session, actor.organization_id, domain):
        raise DomainError(f"An account already uses {domain}.", {"domain": ["Already in use."]})
    parent = (
        get_scoped(session, actor, Account, values["parent_id"], "parent account") if values.get("parent_id") else None
    )
    account = Account(
        organization_id=actor.organization_id, name=values["name"].strip(), parent=parent, owner_id=actor.id
    )
    if domain:
        account.domains.append(AccountDomain(organization_id=actor.organization_id, domain=domain))
    session.add(account)
    _flush_unique(session, "That account's domain is already in use.")
    record_event(session, actor, "create", account, after={"name": account.name, "domain": domain})
    return account


def create_contact(session: Session, actor: User, data: Mapping[str, Any]) -> Contact:
    values = load(ContactSchema, data)
    if contact_for_address(session, actor.organization_id, values["email"]):
        raise DomainError(f"{values['email']} is already a contact.", {"email": ["Already a contact."]})
    account = get_scoped(session, actor, Account, values["account_id"], "account") if values.get("account_id") else None
    contact = Contact(
        organization_id=actor.organization_id,
        name=values["name"].strip(),
        title=values.get("title"),
        account=account,
        owner_id=actor.id,
    )
    contact.emails.append(ContactEmail(organization_id=actor.organization_id, address=values["email"]))
    if values.get("phone"):
        contact.phones.append(ContactPhone(organization_id=actor.organization_id, number=values["phone"].strip()))
    session.add(contact)
    _flush_unique(session, "That address is already a contact.")
    record_event(
        session,
        actor,
        "create",
        contact,
        after={"name": contact.name, "email": values["email"], "account_id": contact.account_id},
    )
    return contact


def create_from_sender(session: Session, actor: User, data: Mapping[str, Any]) -> tuple[Contact, Opportunity | None]:
    """The unknown-sender form: the contact, its account (from the domain, unless it is a
    public mail domain) and optionally a deal, all or nothing."""
    values = load(NewFromSenderSchema, data, locale=actor.organization.setting("locale"))
    # Check everything that can fail before the first write, so a refusal leaves nothing.
    if contact_for_address(session, actor.organization_id, values["email"]):
        raise DomainError(f"{values['email']} is already a contact.", {"email": ["Already a contact."]})
    if values.get("stage_id"):
        open_stage(session, actor, values["stage_id"])
    domain = domain_of(values["email"])
    account = None if is_public_domain(domain) else account_for_domain(session, actor.organization_id, domain)
    if account is None and (values.get("company") or not is_public_domain(domain)):
        account = create_account(
            session,
            actor,
            {
                "name": values.get("company") or company_from_domain(domain),
                "domain": None if is_public_domain(domain) else domain,
            },
        )
    if values.get("deal_name") and account is None:
        raise DomainError("A deal needs a company: enter the company's name.", {"company": ["Needed for a deal."]})
    contact = create_contact(
        session,
        actor,
        {
            "name": values["name"],
            "email": values["email"],
            "title": values.get("title"),
            "account_id": account.id if account else None,
        },
    )
    deal = None
    if values.get("deal_name") and account is not None:
        deal = create_opportunity(
            session,
            actor,
            {
                "name": values["deal_name"],
                "account_id": account.id,
                "contact_id": contact.id,
                "amount": values.get("amount") or 0,
                "stage_id": values["stage_id"],
                "source": "email",
            },
        )
    return contact, deal


def _flush_unique(session: Session, message: str) -> None:
    """Flush, turning a lost race on a unique constraint into the user's message."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise DomainError(message) from None


def contact_for_phone(session: Session, organization_id: int, number: str | None) -> int | None:
    """The contact with this phone number, however either was typed (``phone_key``)."""
    if (key := phone_key(number)) is None:
        return None
    for contact_id, stored in session.execute(
        select(ContactPhone.contact_id, ContactPhone.number).where(
            ContactPhone.organization_id == organization_id, ContactPhone.number.contains(key[-4:])
        )
    ):
        if phone_key(stored) == key:
            return contact_id
    return None
