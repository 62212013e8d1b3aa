"""API tokens: how another system (the company's main CRM, a BI tool, telephony) calls the API.

A token is 32 random bytes, shown once when an admin creates it; the store keeps its SHA-256
(a token is random, not a password: a fast hash is the right one) and its first characters to
tell it apart. It belongs to one organization and has scopes: ``read``, or ``read write``.

A token acts with its owner's rights as they are at each request: once its owner is deactivated
or is no longer an admin, it opens nothing, until another admin takes it over (``take_over``).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, joinedload

from services.access import get_scoped, require_role
from services.audit import record_event
from services.errors import DomainError, NotFound
from services.models import ApiToken, IdempotencyKey, User
from services.types import utcnow

PREFIX = "icrm_"
SCOPES = ("read", "read write")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, actor: User, name: str | None, scopes: str | None) -> tuple[ApiToken, str]:
    """A new token of the actor's organization (an admin's); returns it and its text, shown once."""
    require_role(actor, "admin")
    name = (name or "").strip()
    if not 1 <= len(name) <= 100:
        raise DomainError("Name the token (what will use it), in 100 characters at most.", {"name": ["Name it."]})
    if scopes not in SCOPES:
        raise DomainError(
            "Choose what it may do: read, or read and write.", {"scopes": ["Choose read, or read write."]}
        )
    text = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        organization_id=actor.organization_id,
        name=name,
        token_hash=_hash(text),
        prefix=text[:12],
        scopes=scopes,
        created_by_id=actor.id,
    )
    session.add(token)
    session.flush()
    record_event(session, actor, "create", token, after={"name": name, "scopes": scopes, "prefix": token.prefix})
    return token, text


def revoke_token(session: Session, actor: User, token_id: int, now: datetime | None = None) -> ApiToken:
    require_role(actor, "admin")
    token = session.get(ApiToken, token_id)
    if token is None or token.organization_id != actor.organization_id:
        raise NotFound("token")
    if token.revoked_at is None:
        token.revoked_at = now or utcnow()
        session.flush()
        record_event(
            session,
            actor,
            "revoke",
            token,
            before={"revoked_at": None},
            after={"revoked_at": token.revoked_at.isoformat()},
        )
    return token


def take_over(session: Session, actor: User, token_id: int) -> ApiToken:
    """An admin takes over a token whose owner left or lost the admin's rights: it acts as them
    from now on (audited)."""
    require_role(actor, "admin")
    token = get_scoped(session, actor, ApiToken, token_id, "token")
    if token.revoked_at is not None:
        raise DomainError("A revoked token stays revoked: make a new one.", code="token_revoked")
    before = {"owner_id": token.created_by_id}
    token.created_by_id = actor.id
    session.flush()
    session.refresh(token, ["created_by"])
    record_event(session, actor, "take_over", token, before=before, after={"owner_id": actor.id})
    return token


def tokens(session: Session, actor: User) -> list[ApiToken]:
    require_role(actor, "admin")
    return list(
        session.scalars(
            select(ApiToken)
            .where(ApiToken.organization_id == actor.organization_id)
            .order_by(ApiToken.created_at.desc())
        )
    )


IDEMPOTENCY_KEPT = timedelta(hours=24)  # a retry comes within minutes; a day is Stripe's window too


def forget_idempotency_keys(session: Session, now: datetime | None = None) -> int:
    """The daily job: kept answers older than ``IDEMPOTENCY_KEPT`` go (a key may then be used again)."""
    cutoff = (now or utcnow()) - IDEMPOTENCY_KEPT
    return session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff).execution_options(synchronize_session=False)
    ).rowcount


def token_for(session: Session, text: str | None) -> ApiToken | None:
    """The token with this text, unless unknown or revoked (or not one of ours). Whether its
    owner may still act is the caller's to ask (``ApiToken.owner_may_act``), on every request."""
    if not text or not text.startswith(PREFIX) or len(text) > 100:
        return None
    # With its owner, whose rights every request checks: one statement.
    token = session.scalar(
        select(ApiToken).options(joinedload(ApiToken.created_by)).where(ApiToken.token_hash == _hash(text))
    )
    return token if token is not None and token.revoked_at is None else None
