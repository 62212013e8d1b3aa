"""Mailboxes connected and disconnected, and what capture took from them, for the rep and the admin.

A rep connects their own mailbox by OAuth's authorization code with PKCE (RFC 7636): offline
access, and the narrowest read scopes (``providers.MAIL_SCOPES``: mail and calendar read, nothing
that sends or changes). The refresh token is kept encrypted (``vault``). The mailbox must be the
rep's own address. An admin can instead record the organization's consent (``MailGrant``) and
choose whose mailboxes are read under it. Either one disconnects in one step: the tokens are
dropped and nothing more is read.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.access import get_scoped, require_role
from services.audit import record_event
from services.capture.providers import MAIL_SCOPES, Api, ConsentRevoked, Endpoints, ProviderError, post_token
from services.capture.vault import Vault
from services.errors import DomainError, Forbidden, NotFound
from services.mail.activities import delete_counted
from services.models import (
    MAIL_PROVIDERS,
    Activity,
    AuditEvent,
    Capture,
    Mailbox,
    MailboxFeed,
    MailboxState,
    MailGrant,
    Role,
    User,
)
from services.types import utcnow

PROVIDER_NAMES = {"microsoft": "Microsoft 365", "google": "Google"}


@dataclass
class Authorization:
    """Where to send the rep, and what to keep in their session until they come back."""

    url: str
    state: str
    verifier: str


def authorization(endpoints: Endpoints, provider: str, redirect_uri: str, login_hint: str) -> Authorization:
    if provider not in MAIL_PROVIDERS:
        raise NotFound("mail provider")
    if not endpoints.configured(provider):
        raise DomainError(f"This server is not set up to connect {PROVIDER_NAMES[provider]} mailboxes.")
    verifier = secrets.token_urlsafe(48)
    state = secrets.token_urlsafe(24)
    query = {
        "client_id": endpoints.client(provider)[0],
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": MAIL_SCOPES[provider],
        "state": state,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
        "login_hint": login_hint,
    }
    if provider == "google":
        query |= {"access_type": "offline", "prompt": "consent", "include_granted_scopes": "false"}
    return Authorization(f"{endpoints.authorize_url(provider)}?{urlencode(query)}", state, verifier)


def admin_consent(endpoints: Endpoints, redirect_uri: str) -> Authorization:
    """Microsoft's admin consent for the organization (application permissions: Mail.Read,
    Calendars.Read): a tenant admin approves once, and Microsoft sends them back with the tenant."""
    if not endpoints.configured("microsoft"):
        raise DomainError("This server is not set up to connect Microsoft 365 mailboxes.")
    state = secrets.token_urlsafe(24)
    query = {
        "client_id": endpoints.client("microsoft")[0],
        "redirect_uri": redirect_uri,
        "state": state,
        "scope": f"{endpoints.graph}/.default",
    }
    return Authorization(f"{endpoints.microsoft_login}/organizations/v2.0/adminconsent?{urlencode(query)}", state, "")


def _address(api: Api, endpoints: Endpoints, provider: str) -> str:
    """The mailbox's own address, as its provider names it."""
    if provider == "microsoft":
        me = api.get(f"{endpoints.graph}/v1.0/me?$select=mail,userPrincipalName")
        address = me.get("mail") or me.get("userPrincipalName")
    else:
        address = api.get(f"{endpoints.gmail}/gmail/v1/users/me/profile").get("emailAddress")
    if not isinstance(address, str) or "@" not in address:
        raise ProviderError("The provider did not say which mailbox this is.")
    return address.strip().lower()


def connect(
    session: Session,
    actor: User,
    provider: str,
    code: str,
    verifier: str,
    redirect_uri: str,
    *,
    endpoints: Endpoints,
    vault: Vault,
    http: requests.Session,
    now: datetime | None = None,
) -> Mailbox:
    """The provider's code exchanged for tokens (with the PKCE verifier); the rep's mailbox
    connected, its backfill from ``backfill_days`` ago queued for the worker."""
    now = now or utcnow()
    if provider not in MAIL_PROVIDERS:
        raise NotFound("mail provider")
    client_id, client_secret = endpoints.client(provider)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client_id,
        "client_secret": client_secret,
        "code_verifier": verifier,
    }
    try:
        token = post_token(http, endpoints.token_url(provider), form, now)
    except ConsentRevoked:
        raise DomainError("The sign-in was refused or has expired. Connect again.") from None
    if not token.refresh:
        raise DomainError("The provider gave no offline access: connect again and accept every permission asked.")
    try:
        address = _address(Api(http, lambda _refresh: token.access), endpoints, provider)
    except (ProviderError, ConsentRevoked) as failure:
        raise DomainError(f"The mailbox could not be read: {failure}") from None
    if address != actor.email:
        raise DomainError(f"Connect your own mailbox ({actor.email}), not {address}.", code="not_yours")
    mailbox = _mailbox_of(session, actor, actor, provider, address, now)
    mailbox.grant_id = None
    mailbox.secret = vault.seal(token.refresh)
    mailbox.access_secret = vault.seal(token.access)
    mailbox.access_expires_at = token.expires_at
    session.flush()
    record_event(session, actor, "connect", mailbox, after={"provider": provider, "address": address})
    return mailbox


def _mailbox_of(session: Session, actor: User, person: User, provider: str, address: str, now: datetime) -> Mailbox:
    """The person's mailbox row, new or taken up again: reading starts (or resumes) now."""
    mailbox = session.scalar(
        select(Mailbox).where(Mailbox.organization_id == person.organization_id, Mailbox.user_id == person.id)
    )
    if mailbox is None:
        mailbox = Mailbox(organization_id=person.organization_id, user_id=person.id, provider=provider, address=address)
        session.add(mailbox)
    elif mailbox.provider != provider or mailbox.address != address:
        session.execute(delete(MailboxFeed).where(MailboxFeed.mailbox_id == mailbox.id))  # another feed altogether
        mailbox.backfill_done_at = None
    mailbox.provider, mailbox.address = provider, address
    mailbox.state = MailboxState.CONNECTED.value
    mailbox.problem = mailbox.problem_at = mailbox.disconnected_at = mailbox.next_sync_at = None
    mailbox.connected_at, mailbox.connected_by_id = now, actor.id
    if mailbox.backfill_done_at is None:
        mailbox.backfill_since = now - timedelta(days=int(person.organization.setting("backfill_days")))
    return mailbox


def disconnect(session: Session, actor: User, mailbox_id: int, now: datetime | None = None) -> Mailbox:
    """Nothing more is read: the tokens are dropped, and the folders' positions with them (a
    later connection reads its backfill again, and takes nothing twice)."""
    mailbox = _owned(session, actor, mailbox_id)
    before = {"state": mailbox.state}
    mailbox.state = MailboxState.DISCONNECTED.value
    mailbox.secret = mailbox.access_secret = None
    mailbox.access_expires_at = None
    mailbox.disconnected_at = now or utcnow()
    mailbox.backfill_done_at = None
    session.execute(delete(MailboxFeed).where(MailboxFeed.mailbox_id == mailbox.id))
    session.flush()
    record_event(session, actor, "disconnect", mailbox, before=before, after={"state": mailbox.state})
    return mailbox


def grant_organization(
    session: Session, actor: User, provider: str, directory: str, now: datetime | None = None
) -> MailGrant:
    """The organization's consent recorded (Microsoft's admin consent came back for ``directory``,
    the tenant; or the Workspace admin delegated to our service account for that domain)."""
    require_role(actor, Role.ADMIN.value)
    if provider not in MAIL_PROVIDERS:
        raise NotFound("mail provider")
    directory = (directory or "").strip().lower()
    if not directory or len(directory) > 253:
        raise DomainError("Name the tenant or the Workspace domain.", {"directory": ["Required."]})
    grant = session.scalar(
        select(MailGrant).where(MailGrant.organization_id == actor.organization_id, MailGrant.provider == provider)
    )
    if grant is None:
        grant = MailGrant(organization_id=actor.organization_id, provider=provider, directory=directory)
        session.add(grant)
    grant.directory, grant.granted_by_id, grant.granted_at = directory, actor.id, now or utcnow()
    session.flush()
    record_event(session, actor, "grant", grant, after={"provider": provider, "directory": directory})
    return grant


def capture_people(
    session: Session, actor: User, provider: str, user_ids: list[int], now: datetime | None = None
) -> list[Mailbox]:
    """Under the organization's consent, these people's mailboxes are read (their own address)."""
    require_role(actor, Role.ADMIN.value)
    now = now or utcnow()
    grant = session.scalar(
        select(MailGrant).where(MailGrant.organization_id == actor.organization_id, MailGrant.provider == provider)
    )
    if grant is None:
        raise DomainError(f"First give the organization's consent for {PROVIDER_NAMES.get(provider, provider)}.")
    mailboxes = []
    for user_id in dict.fromkeys(user_ids):
        person = get_scoped(session, actor, User, user_id, "person")
        if not person.is_active:
            raise DomainError(f"{person.name} is deactivated: their mailbox is not read.")
        mailbox = _mailbox_of(session, actor, person, provider, person.email, now)
        mailbox.grant_id, mailbox.secret = grant.id, None
        mailbox.access_secret = mailbox.access_expires_at = None
        mailboxes.append(mailbox)
    session.flush()
    for mailbox in mailboxes:
        record_event(
            session,
            actor,
            "connect",
            mailbox,
            after={"provider": provider, "address": mailbox.address, "grant": grant.id},
        )
    return mailboxes


def _owned(session: Session, actor: User, mailbox_id: int) -> Mailbox:
    """A mailbox its owner or an admin may act on."""
    mailbox = get_scoped(session, actor, Mailbox, mailbox_id, "mailbox")
    if mailbox.user_id != actor.id and actor.role != Role.ADMIN.value:
        raise Forbidden("Only its owner or an admin can do that to a mailbox.")
    return mailbox


def read_soon(session: Session, actor: User, mailbox_id: int) -> Mailbox:
    """The mailbox's next pass made due now, rather than at its next poll."""
    mailbox = _owned(session, actor, mailbox_id)
    mailbox.next_sync_at = None
    session.flush()
    return mailbox


def own_mailbox(session: Session, actor: User) -> Mailbox | None:
    return session.scalar(
        select(Mailbox).where(Mailbox.organization_id == actor.organization_id, Mailbox.user_id == actor.id)
    )


@dataclass
class Captured:
    capture_id: int
    activity_id: int
    subject: str
    who: str
    occurred_at: datetime
    type: str
    direction: str
    reason: str
    taken_back: bool


def recent_captures(session: Session, actor: User, limit: int = 20) -> list[Captured]:
    """What capture took from the rep's own mailbox, newest first, and why."""
    rows = session.execute(
        select(Capture, Activity)
        .join(Activity, Activity.id == Capture.activity_id)
        .join(Mailbox, Mailbox.id == Capture.mailbox_id)
        .where(Capture.organization_id == actor.organization_id, Mailbox.user_id == actor.id)
        .order_by(Capture.captured_at.desc(), Capture.id.desc())
        .limit(limit)
    ).all()
    return [
        Captured(
            capture.id,
            activity.id,
            activity.subject or "(no subject)",
            _counterpart(activity),
            activity.occurred_at,
            activity.type,
            activity.direction,
            capture.reason,
            capture.uncaptured_at is not None,
        )
        for capture, activity in rows
    ]


def _counterpart(activity: Activity) -> str:
    roles = ("from",) if activity.direction == "inbound" else ("to", "cc", "attendee")
    return next((p.address for p in activity.participants if p.role in roles), "")


def uncapture(session: Session, actor: User, capture_id: int, now: datetime | None = None) -> tuple[Activity, str]:
    """A captured mail or meeting taken back by its rep: the activity removed (softly, counted
    out), never captured again. Returns it, and the address to offer for the never-log list."""
    now = now or utcnow()
    capture = get_scoped(session, actor, Capture, capture_id, "capture")
    activity = session.get(Activity, capture.activity_id)
    assert activity is not None
    if activity.owner_id != actor.id:
        raise Forbidden("Only the rep whose mailbox it came from can take it back.")
    if capture.uncaptured_at is None:
        capture.uncaptured_at = now
        delete_counted(session, actor.organization, activity, now)
        record_event(
            session, actor, "uncapture", activity, before={"deleted_at": None}, after={"deleted_at": now.isoformat()}
        )
    return activity, _counterpart(activity)


CAPTURE_ACTIONS = ("connect", "disconnect", "grant", "uncapture", "capture_stopped")  # the capture audit


@dataclass
class Overview:
    """The admin's view: every mailbox with whose it is, the capture audit, who can be chosen."""

    mailboxes: list[Any]  # (Mailbox, the person's name)
    audit: list[AuditEvent]
    people: list[User]


def overview(session: Session, actor: User) -> Overview:
    require_role(actor, Role.ADMIN.value)
    org = actor.organization_id
    return Overview(
        list(
            session.execute(
                select(Mailbox, User.name)
                .join(User, User.id == Mailbox.user_id)
                .where(Mailbox.organization_id == org)
                .order_by(User.name)
            )
        ),
        list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.organization_id == org, AuditEvent.action.in_(CAPTURE_ACTIONS))
                .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
                .limit(50)
            )
        ),
        list(session.scalars(select(User).where(User.organization_id == org, User.is_active).order_by(User.name))),
    )
