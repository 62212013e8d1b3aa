"""The organization's people: invited, given a role and a team, changed, and let go.

* An invitation is a single-use link that expires (``INVITATION_DAYS``), sent by e-mail; the
  store keeps the SHA-256 of its token. It is accepted on its page with a password, or by single
  sign-on with the invited address (``accept_by_address``, which ``services.identity`` calls).
  The user is made then, with the role and team the admin chose.
* A leaver is deactivated, never deleted (``deactivate``): they can no longer sign in, the raised
  token version ends every session and pane token of theirs at once, and the API tokens they made
  open nothing until another admin takes them over (``services.integration.api_tokens``). In the
  same step their open deals, accounts, contacts, leads and open follow-ups go to a successor the
  admin chooses, each change versioned for the sync and audited. Their activities, won and lost
  deals stay theirs: past work keeps counting, under their name, in the periods it was done in.
* The organization always keeps one active admin.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, joinedload

from services.access import get_scoped, require_role
from services.capture.mailboxes import disconnect, own_mailbox
from services.audit import record_event, snapshot
from services.errors import DomainError, NotFound
from services.integration.sync import rows_changed
from services.models import (
    ROLES,
    Account,
    Contact,
    FollowUp,
    Invitation,
    Lead,
    MailboxState,
    Opportunity,
    Organization,
    Role,
    Team,
    User,
    live,
)
from services.schemas import Address, load, parse_id
from services.types import as_utc, utcnow
from services.users import hash_password

INVITATION_DAYS = 7
MIN_PASSWORD = 10
PERSON_FIELDS = ("name", "email", "role", "team_id", "is_active")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class InviteSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    email = Address(required=True)
    name = fields.String(load_default="", validate=validate.Length(max=200))
    role = fields.String(
        load_default=Role.REP.value, validate=validate.OneOf(ROLES, error="Choose rep, manager or admin.")
    )
    team_id = fields.Raw(load_default=None)


class PersonSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    name = fields.String(validate=validate.Length(min=1, max=200))
    role = fields.String(validate=validate.OneOf(ROLES, error="Choose rep, manager or admin."))
    team_id = fields.Raw(allow_none=True)


def _team(session: Session, org_id: int, value: Any) -> int | None:
    """A team of the organization by id, or None for "no team"; anything else is refused."""
    if value in (None, "", "none"):
        return None
    team_id = parse_id(value)
    team = session.get(Team, team_id) if team_id else None
    if team is None or team.organization_id != org_id:
        raise DomainError("Choose one of the organization's teams.", {"team_id": ["Choose a team from the list."]})
    return team.id


def _check_password(password: str | None) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise DomainError(
            f"Choose a password of at least {MIN_PASSWORD} characters.",
            {"password": [f"At least {MIN_PASSWORD} characters."]},
        )
    if len(password) > 200 or "\x00" in password:
        raise DomainError("That password cannot be used.", {"password": ["At most 200 characters."]})
    return password


# -- invitations ----------------------------------------------------------------------------------


def open_invitation(
    session: Session,
    org: Organization,
    actor: User | None,
    email: str,
    name: str,
    role: str,
    team_id: int | None,
    now: datetime,
) -> tuple[Invitation, str]:
    """A new invitation (any earlier open one to the same address is revoked); returns it and its
    token, which only the link carries."""
    session.execute(
        update(Invitation)
        .where(Invitation.email == email, Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        organization_id=org.id,
        email=email,
        name=name,
        role=role,
        team_id=team_id,
        token_hash=token_hash(token),
        invited_by_id=actor.id if actor is not None else None,
        created_at=now,
        expires_at=now + timedelta(days=INVITATION_DAYS),
    )
    session.add(invitation)
    session.flush()
    record_event(session, actor, "invite", invitation, after={"email": email, "role": role, "team_id": team_id})
    return invitation, token


def invite(session: Session, actor: User, data: dict[str, Any], now: datetime | None = None) -> tuple[Invitation, str]:
    """An admin invites someone by e-mail, with a role and a team."""
    require_role(actor, "admin")
    values = load(InviteSchema, data)
    team_id = _team(session, actor.organization_id, values["team_id"])
    if session.scalar(select(User.id).where(User.email == values["email"])) is not None:
        raise DomainError("That address already has an account.", {"email": ["This address already has an account."]})
    name = values["name"].strip() or values["email"].split("@")[0]
    return open_invitation(
        session, actor.organization, actor, values["email"], name, values["role"], team_id, now or utcnow()
    )


def invitation_for(session: Session, token: str | None, now: datetime | None = None) -> Invitation | None:
    """The open invitation this token names: not accepted, not revoked, not expired."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    invitation = session.scalar(
        select(Invitation)
        .where(Invitation.token_hash == token_hash(token))
        .options(joinedload(Invitation.organization))
    )
    if invitation is None or not _open(invitation, now or utcnow()):
        return None
    return invitation


def _open(invitation: Invitation, now: datetime) -> bool:
    return invitation.accepted_at is None and invitation.revoked_at is None and as_utc(invitation.expires_at) > now


def accept_new_user(
    session: Session,
    org: Organization,
    email: str,
    name: str,
    role: str,
    team_id: int | None,
    password: str | None,
    now: datetime,
) -> User:
    user = User(
        organization_id=org.id,
        email=email,
        name=name,
        role=role,
        team_id=team_id,
        password_hash=hash_password(_check_password(password)) if password is not None else None,
        created_at=now,
    )
    session.add(user)
    session.flush()
    record_event(session, user, "join", user, after=snapshot(user, PERSON_FIELDS))
    return user


def accept(session: Session, token: str, name: str | None, password: str | None, now: datetime | None = None) -> User:
    """The invited person accepts with a password: their account is made, the link is spent."""
    now = now or utcnow()
    invitation = invitation_for(session, token, now)
    if invitation is None:
        raise NotFound("invitation")
    _check_password(password)
    return _spend(session, invitation, (name or "").strip()[:200] or invitation.name, password, now)


def _spend(session: Session, invitation: Invitation, name: str, password: str | None, now: datetime) -> User:
    # Spent once: of two acceptances racing, one changes the row and the other finds it spent.
    spent = session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
        .values(accepted_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if spent != 1 or session.scalar(select(User.id).where(User.email == invitation.email)) is not None:
        raise NotFound("invitation")
    user = accept_new_user(
        session, invitation.organization, invitation.email, name, invitation.role, invitation.team_id, password, now
    )
    invitation.user_id = user.id
    return user


def open_invitation_for(session: Session, address: str, now: datetime | None = None) -> Invitation | None:
    """The open invitation to this address, if any."""
    invitation = session.scalar(
        select(Invitation)
        .where(Invitation.email == address, Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
        .order_by(Invitation.created_at.desc())
        .options(joinedload(Invitation.organization))
    )
    return invitation if invitation is not None and _open(invitation, now or utcnow()) else None


def accept_by_address(session: Session, address: str, name: str | None, now: datetime | None = None) -> User | None:
    """Single sign-on with an invited address accepts the invitation (the provider vouched for
    the address; the caller checked its tenant or Workspace is the organization's)."""
    now = now or utcnow()
    invitation = open_invitation_for(session, address, now)
    if invitation is None:
        return None
    return _spend(session, invitation, (name or "").strip()[:200] or invitation.name, None, now)


def revoke_invitation(session: Session, actor: User, invitation_id: int, now: datetime | None = None) -> Invitation:
    require_role(actor, "admin")
    invitation = get_scoped(session, actor, Invitation, invitation_id, "invitation")
    if invitation.accepted_at is None and invitation.revoked_at is None:
        invitation.revoked_at = now or utcnow()
        record_event(session, actor, "revoke", invitation, after={"email": invitation.email})
    return invitation


def pending_invitations(session: Session, actor: User, now: datetime | None = None) -> list[Invitation]:
    require_role(actor, "admin")
    now = now or utcnow()
    return list(
        session.scalars(
            select(Invitation)
            .where(
                Invitation.organization_id == actor.organization_id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > now,
            )
            .options(joinedload(Invitation.team))
            .order_by(Invitation.created_at.desc())
        )
    )


# -- people ----------------------------------------------------------------------------------------


def _person(session: Session, actor: User, user_id: int) -> User:
    require_role(actor, "admin")
    return get_scoped(session, actor, User, user_id, "person")


def _admins_left(session: Session, org_id: int, without: int) -> int:
    return session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.organization_id == org_id, User.role == "admin", User.is_active, User.id != without)
    )


def change_person(session: Session, actor: User, user_id: int, data: dict[str, Any]) -> User:
    """An admin changes someone's name, role or team. The last active admin stays an admin.
    A change of role ends the person's sessions and tokens: they sign in again with the new rights."""
    person = _person(session, actor, user_id)
    values = load(PersonSchema, data)
    if "team_id" in values:
        values["team_id"] = _team(session, actor.organization_id, values["team_id"])
    if "name" in values:
        values["name"] = values["name"].strip()
        if not values["name"]:
            raise DomainError("Enter a name.", {"name": ["Enter a name."]})
    before = snapshot(person, PERSON_FIELDS)
    if values.get("role", person.role) != "admin" and person.role == "admin":
        if _admins_left(session, actor.organization_id, person.id) == 0:
            raise DomainError(
                "The organization keeps at least one admin: make someone else an admin first.",
                {"role": ["The last admin stays an admin."]},
            )
    for key, value in values.items():
        setattr(person, key, value)
    after = snapshot(person, PERSON_FIELDS)
    if after != before:
        if after["role"] != before["role"]:
            person.token_version += 1
        record_event(session, actor, "update", person, before=before, after=after)
    return person


@dataclass(frozen=True)
class Handover:
    """What a leaver's deactivation handed to their successor, per kind of record."""

    deals: int
    accounts: int
    contacts: int
    leads: int
    follow_ups: int

    @property
    def total(self) -> int:
        return self.deals + self.accounts + self.contacts + self.leads + self.follow_ups


# A leaver's open work, per model: what passes to the successor.
OPEN_WORK: tuple[tuple[str, type, Any], ...] = (
    ("deals", Opportunity, lambda: (Opportunity.status == "open") & live(Opportunity)),
    ("accounts", Account, lambda: live(Account)),
    ("contacts", Contact, lambda: live(Contact)),
    ("leads", Lead, lambda: Lead.status.in_(("new", "working")) & live(Lead)),
    ("follow_ups", FollowUp, lambda: FollowUp.done_at.is_(None) & live(FollowUp)),
)


def open_work(session: Session, organization_id: int, owner_id: int) -> dict[str, list[int]]:
    return {
        kind: list(
            session.scalars(
                select(model.id).where(model.organization_id == organization_id, model.owner_id == owner_id, alive())
            )
        )
        for kind, model, alive in OPEN_WORK
    }


def deactivate(session: Session, actor: User, user_id: int, successor_id: Any) -> Handover:
    """The leaver can no longer sign in, and every session and token of theirs ends now; their
    open work goes to the successor, in the same transaction."""
    person = _person(session, actor, user_id)
    if person.id == actor.id:
        raise DomainError("You cannot deactivate yourself; ask another admin.")
    if not person.is_active:
        raise DomainError(f"{person.name} is already deactivated.")
    successor = session.get(User, parse_id(successor_id) or 0) if successor_id not in (None, "") else None
    if successor is None or successor.organization_id != actor.organization_id or not successor.is_active:
        raise DomainError(
            "Choose who takes over their open work.", {"successor_id": ["Choose an active person of the organization."]}
        )
    if successor.id == person.id:
        raise DomainError("Choose someone else to take over their work.", {"successor_id": ["Not the leaver."]})
    if person.role == "admin" and _admins_left(session, actor.organization_id, person.id) == 0:
        raise DomainError("The organization keeps at least one admin.")
    before = snapshot(person, PERSON_FIELDS)
    work = open_work(session, actor.organization_id, person.id)
    for kind, model, _ in OPEN_WORK:
        rows_changed(session, actor.organization_id, model, work[kind], {"owner_id": successor.id})
    person.is_active = False
    person.token_version += 1  # every cookie session and pane token of theirs ends at once
    if (mailbox := own_mailbox(session, person)) is not None and mailbox.state != MailboxState.DISCONNECTED.value:
        disconnect(session, actor, mailbox.id)  # nothing more is read from a leaver's mailbox
    handover = Handover(**{kind: len(ids) for kind, ids in work.items()})
    record_event(
        session,
        actor,
        "deactivate",
        person,
        before=before,
        after=snapshot(person, PERSON_FIELDS)
        | {"successor_id": successor.id, "handed_over": {kind: ids for kind, ids in work.items()}},
    )
    session.flush()
    session.expire_all()  # the bulk statements changed rows the session may hold
    return handover


def reactivate(session: Session, actor: User, user_id: int) -> User:
    person = _person(session, actor, user_id)
    if not person.is_active:
        person.is_active = True
        record_event(session, actor, "reactivate", person, after=snapshot(person, PERSON_FIELDS))
    return person


def people(session: Session, actor: User) -> list[User]:
    require_role(actor, "admin")
    return list(
        session.scalars(
            select(User)
            .where(User.organization_id == actor.organization_id)
            .options(joinedload(User.team))
            .order_by(User.is_active.desc(), User.name)
        )
    )


def invitation_message(invitation: Invitation, organization_name: str, link: str, sender: str) -> EmailMessage:
    """The invitation as an e-mail, through the SMTP settings the reminders use."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = invitation.email
    message["Subject"] = f"Join {organization_name} on Inbox CRM"[:200]
    message.set_content(
        f"Hello {invitation.name},\n\nYou are invited to {organization_name}'s CRM as a {invitation.role}.\n"
        f"Open this link to set your password, or to sign in with your work account:\n\n    {link}\n\n"
        f"The link works once, until {invitation.expires_at:%d %b %Y %H:%M} UTC.\n\nInbox CRM\n"
    )
    return message
