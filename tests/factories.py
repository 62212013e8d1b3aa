"""A small organization with its people, written straight to the store for tests.

Two organizations, so that every test can try to reach across; in ours, two teams with a
manager each, reps, an admin, a pipeline, an account with a branch, contacts and a deal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy.orm import Session

from services.deals import stage_entered

from services.models import (
    Account,
    AccountDomain,
    Contact,
    ContactEmail,
    NoteChecklist,
    Opportunity,
    Organization,
    Stage,
    StageChange,
    Team,
    User,
)
from services.users import hash_password

PASSWORD = "correct horse battery staple"
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)
_HASH = hash_password(PASSWORD)


@dataclass
class World:
    org: Organization
    stages: list[Stage]
    east: Team
    west: Team
    rep: User
    teammate: User
    west_rep: User
    manager: User
    west_manager: User
    admin: User
    account: Account
    branch: Account
    contact: Contact
    deal: Opportunity
    # The other organization, for crossing the tenant line.
    other_org: Organization
    other_user: User
    other_stage: Stage
    other_account: Account
    other_contact: Contact
    other_deal: Opportunity


def make_user(session: Session, org: Organization, team: Team | None, name: str, role: str, domain: str) -> User:
    user = User(
        organization=org,
        team=team,
        name=name,
        role=role,
        email=f"{name.split()[0].lower()}@{domain}",
        password_hash=_HASH,
    )
    session.add(user)
    return user


def make_stages(session: Session, org: Organization) -> list[Stage]:
    stages = [
        Stage(organization_id=org.id, name=name, position=i, probability=Decimal(p), sla_days=sla)
        for i, (name, p, sla) in enumerate(
            [("Qualify", "0.1", 14), ("Proposal", "0.4", 21), ("Negotiation", "0.7", 10)], start=1
        )
    ]
    session.add_all(stages)
    return stages


def make_account(
    session: Session, org: Organization, owner: User, name: str, domain: str | None, parent: Account | None = None
) -> Account:
    account = Account(
        organization_id=org.id, name=name, owner_id=owner.id, parent=parent, created_at=NOW - timedelta(days=100)
    )
    if domain:
        account.domains.append(AccountDomain(organization_id=org.id, domain=domain))
    session.add(account)
    return account


def make_contact(
    session: Session, org: Organization, account: Account | None, name: str, address: str, owner: User
) -> Contact:
    contact = Contact(organization_id=org.id, account=account, name=name, owner_id=owner.id)
    contact.emails.append(ContactEmail(organization_id=org.id, address=address))
    session.add(contact)
    return contact


def make_deal(
    session: Session,
    org: Organization,
    account: Account,
    owner: User,
    stage: Stage,
    name: str = "Reefer contract",
    created: datetime = NOW - timedelta(days=10),
) -> Opportunity:
    deal = Opportunity(
        organization_id=org.id,
        name=name,
        account=account,
        owner=owner,
        amount=Decimal("25000.00"),
        currency=org.currency,
        stage=stage,
        status="open",
        stage_entered_at=created,
        created_at=created,
    )
    stage_entered(deal, stage, "open")
    session.add(deal)
    session.flush()
    session.add(
        StageChange(
            organization_id=org.id,
            opportunity_id=deal.id,
            from_stage_id=None,
            to_stage_id=stage.id,
            to_status="open",
            changed_at=created,
            changed_by_id=owner.id,
        )
    )
    return deal


def build_world(session: Session) -> World:
    org = Organization(
        name="Northwind", time_zone="Europe/Berlin", currency="EUR", domains=["northwind.test"], settings={}
    )
    other = Organization(
        name="Contoso", time_zone="America/Chicago", currency="USD", domains=["contoso.test"], settings={}
    )
    session.add_all([org, other])
    session.flush()
    stages = make_stages(session, org)
    other_stage = make_stages(session, other)[0]
    east, west = Team(organization_id=org.id, name="East"), Team(organization_id=org.id, name="West")
    session.add_all([east, west])
    rep = make_user(session, org, east, "Rita Rep", "rep", "northwind.test")
    teammate = make_user(session, org, east, "Tom Teammate", "rep", "northwind.test")
    west_rep = make_user(session, org, west, "Wendy West", "rep", "northwind.test")
    manager = make_user(session, org, east, "Mia Manager", "manager", "northwind.test")
    west_manager = make_user(session, org, west, "Walt Manager", "manager", "northwind.test")
    admin = make_user(session, org, None, "Ada Admin", "admin", "northwind.test")
    other_user = make_user(session, other, None, "Oscar Other", "admin", "contoso.test")
    session.flush()
    account = make_account(session, org, rep, "Acme Freight", "acme.test")
    branch = make_account(session, org, rep, "Acme Freight Denver", "denver.acme.test", parent=account)
    contact = make_contact(session, org, account, "Ann Buyer", "ann@acme.test", rep)
    other_account = make_account(session, other, other_user, "Acme Freight", "acme.test")
    other_contact = make_contact(session, other, other_account, "Ann Elsewhere", "ann@acme.test", other_user)
    session.add(NoteChecklist(organization_id=org.id, activity_type="call", questions=["Truck size", "Lanes used"]))
    session.flush()
    deal = make_deal(session, org, account, rep, stages[0])
    other_deal = make_deal(session, other, other_account, other_user, other_stage, "Their secret deal")
    session.commit()
    return World(
        org,
        stages,
        east,
        west,
        rep,
        teammate,
        west_rep,
        manager,
        west_manager,
        admin,
        account,
        branch,
        contact,
        deal,
        other,
        other_user,
        other_stage,
        other_account,
        other_contact,
        other_deal,
    )


def logged(app, world: World, *activities: tuple[User, str, datetime]) -> None:
    """Outbound activities (owner, type, when) written straight to the app's store, then rolled up."""
    from services.models import Activity
    from services.rollups import rebuild_rollups

    with app.extensions["inboxcrm.db"].sessions() as session:
        for owner, kind, when in activities:
            session.add(
                Activity(
                    organization_id=world.org.id,
                    type=kind,
                    direction="outbound",
                    outcome="connected" if kind == "call" else None,
                    occurred_at=when,
                    owner_id=owner.id,
                    source="web",
                )
            )
        session.flush()
        rebuild_rollups(session, session.get(Organization, world.org.id))
        session.commit()


def slipping_team(app, world: World) -> None:
    """Both of East's reps slipping: in the 28 days before the last 7, Rita logged 40 activities
    and Tom 60 (2.0 and 3.0 a working day); in the last 7 days, one each (0.2)."""
    now = datetime.now(timezone.utc)
    logged(
        app,
        world,
        *(
            (owner, "call", when)
            for owner, before in ((world.rep, 40), (world.teammate, 60))
            for when in [now - timedelta(days=8, hours=n * 600 // before) for n in range(before)]
            + [now - timedelta(days=2)]
        ),
    )
