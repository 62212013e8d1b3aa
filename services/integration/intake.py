"""Lead intake: leads posted from outside (a web form, a WhatsApp provider, an ads platform) to
a source's intake URL (``/intake/<key>``).

* **Keyed or signed**: the URL's key is unguessable (24 random bytes) and names one source of one
  organization; a source may also demand each request be signed with its secret, the webhooks'
  way (``services.integration.webhooks.verify``), so a leaked URL alone cannot post.
* **Assigned round-robin** among the active reps of the source's team (every rep of the
  organization when it names none), in a fixed order from where the last lead went.
* **Kept, not doubled, never overwritten**: every post is kept as an arrival (what it said, its
  message). One with the e-mail address or phone number of a live lead of the organization is
  an arrival on that lead, and changes none of its fields (anyone holding a form's key could
  otherwise write into a lead's record); the first arrival stands, so speed to first contact
  counts from when the lead first came in. The answer is the same either way, and names no
  lead: the URL tells a prober nothing of who is a lead already.
* **A source can be switched off and its key rotated** (the old URL then answers 404).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any, Mapping

from marshmallow import fields, validate
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.access import get_scoped, require_role
from services.audit import record_event
from services.errors import DomainError, NotFound
from services.models import LEAD_SOURCES, Lead, LeadArrival, LeadSource, Team, User, live
from services.schemas import Address, InputSchema, load
from services.mail.text import phone_key
from services.types import utcnow
from services.integration.webhooks import verify


class IntakeSchema(InputSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    email = Address()
    phone = fields.String(validate=validate.Length(min=5, max=40))
    company = fields.String(validate=validate.Length(max=200))
    message = fields.String(validate=validate.Length(max=5_000))


def add_source(
    session: Session, actor: User, name: str | None, kind: str | None, team_id: Any = None, signed: bool = False
) -> LeadSource:
    require_role(actor, "admin")
    name = (name or "").strip()
    if not 1 <= len(name) <= 100:
        raise DomainError(
            "Name the source (the form or provider it is), in 100 characters at most.", {"name": ["Name it."]}
        )
    if kind not in LEAD_SOURCES:
        raise DomainError("Choose what kind of source it is.", {"kind": ["Choose one."]})
    team = get_scoped(session, actor, Team, team_id, "team") if team_id not in (None, "") else None
    source = LeadSource(
        organization_id=actor.organization_id,
        name=name,
        kind=kind,
        key=secrets.token_urlsafe(24),
        secret="whsec_" + secrets.token_hex(24),
        signed=signed,
        team_id=team.id if team else None,
    )
    session.add(source)
    session.flush()
    record_event(
        session,
        actor,
        "create",
        source,
        after={"name": name, "kind": kind, "team_id": source.team_id, "signed": signed},
    )
    return source


def sources(session: Session, actor: User) -> list[LeadSource]:
    require_role(actor, "admin")
    return list(
        session.scalars(
            select(LeadSource).where(LeadSource.organization_id == actor.organization_id).order_by(LeadSource.id)
        )
    )


def source_for(
    session: Session, key: str, body: bytes, signature: str | None, now: datetime | None = None
) -> LeadSource:
    """The live source this key names, the request's signature checked when it demands one;
    else NotFound, whatever the reason (a prober learns nothing)."""
    source = session.scalar(select(LeadSource).where(LeadSource.key == key)) if 0 < len(key) <= 64 else None
    if source is None or source.disabled_at is not None:
        raise NotFound("intake")
    if source.signed and not (signature and verify(source.secret, body, signature, int((now or utcnow()).timestamp()))):
        raise NotFound("intake")
    return source


def _next_rep(session: Session, source: LeadSource) -> User:
    query = (
        select(User)
        .where(User.organization_id == source.organization_id, User.role == "rep", User.is_active.is_(True))
        .order_by(User.id)
    )
    if source.team_id is not None:
        query = query.where(User.team_id == source.team_id)
    reps = session.scalars(query).all()
    if not reps:
        raise DomainError("The source's team has no active rep to take the lead.", code="no_rep")
    after = [rep for rep in reps if source.last_owner_id is not None and rep.id > source.last_owner_id]
    return after[0] if after else reps[0]


def take_lead(session: Session, source: LeadSource, data: Mapping[str, Any], now: datetime | None = None) -> Lead:
    """A post to the source's URL: kept as an arrival (what it said, its message) on the live lead
    with its e-mail or phone, else on a new lead given to the next rep in turn. The post is
    unauthenticated (a form's key is no proof of who typed it): it never changes an existing
    lead's fields, and its answer says nothing of which happened (the route's)."""
    values = load(IntakeSchema, data)
    key = phone_key(values.get("phone"))
    if not values.get("email") and key is None:
        raise DomainError(
            "A lead needs an e-mail address or a phone number to be reached at.", {"email": ["Give one."]}
        )
    now = now or utcnow()
    org_id = source.organization_id
    # Locked: of two posts of the same person at once, the second finds the first.
    session.execute(select(LeadSource.id).where(LeadSource.id == source.id).with_for_update())
    lead = None
    if values.get("email"):
        lead = session.scalar(
            select(Lead)
            .where(Lead.organization_id == org_id, live(Lead), func.lower(Lead.email) == values["email"].lower())
            .order_by(Lead.id)
            .limit(1)
        )
    if lead is None and key is not None:
        lead = next(
            (
                found
                for found in session.scalars(
                    select(Lead)
                    .where(Lead.organization_id == org_id, live(Lead), Lead.phone.contains(key[-4:]))
                    .order_by(Lead.id)
                )
                if phone_key(found.phone) == key
            ),
            None,
        )
    if lead is None:
        owner = _next_rep(session, source)
        lead = Lead(
            organization_id=org_id,
            name=values["name"].strip(),
            email=values.get("email"),
            phone=values.get("phone"),
            company=values.get("company"),
            source=source.kind,
            owner_id=owner.id,
            status="new",
            created_at=now,
        )
        session.add(lead)
        source.last_owner_id = owner.id
        session.flush()
        # The audit trail names the source and the rep; what the person typed is on the lead and its arrival.
        record_event(session, None, "intake", lead, after={"source_id": source.id, "owner_id": owner.id})
    else:
        record_event(session, None, "arrival", lead, after={"source_id": source.id})
    session.add(
        LeadArrival(
            organization_id=org_id,
            lead_id=lead.id,
            source_id=source.id,
            received_at=now,
            name=values["name"].strip(),
            email=values.get("email"),
            phone=values.get("phone"),
            company=values.get("company"),
            message=values.get("message"),
        )
    )
    session.flush()
    return lead


def source_of(session: Session, actor: User, source_id: int) -> LeadSource:
    require_role(actor, "admin")
    return get_scoped(session, actor, LeadSource, source_id, "lead source")


def set_source_enabled(
    session: Session, actor: User, source_id: int, enabled: bool, now: datetime | None = None
) -> LeadSource:
    """Switch a source off (its URL then answers 404, as an unknown key does) or on again."""
    source = source_of(session, actor, source_id)
    before = {"disabled_at": source.disabled_at.isoformat() if source.disabled_at else None}
    source.disabled_at = None if enabled else (source.disabled_at or now or utcnow())
    session.flush()
    record_event(
        session,
        actor,
        "enable" if enabled else "disable",
        source,
        before=before,
        after={"disabled_at": source.disabled_at.isoformat() if source.disabled_at else None},
    )
    return source


def rotate_key(session: Session, actor: User, source_id: int, now: datetime | None = None) -> LeadSource:
    """A new key (and secret) for a source whose URL leaked: the old URL answers 404 at once."""
    source = source_of(session, actor, source_id)
    source.key, source.secret = secrets.token_urlsafe(24), "whsec_" + secrets.token_hex(24)
    source.key_rotated_at = now or utcnow()
    session.flush()
    record_event(session, actor, "rotate_key", source, after={"key_rotated_at": source.key_rotated_at.isoformat()})
    return source
