"""Signing in with a token from the mail client: Microsoft identity platform access tokens.

The Outlook pane asks Office for an access token to this API (``Office.auth.getAccessToken``)
and hands it over once; we check it the way Microsoft's token rules say and map it to a user:

* the signature, with the identity platform's published keys (JWKS), RS256 only, so ``none``
  and HMAC tokens signed with a public key are refused;
* the issuer, per tenant: ``https://login.microsoftonline.com/{tid}/v2.0`` (v2) or
  ``https://sts.windows.net/{tid}/`` (v1), for an allowed tenant only;
* the audience (our client id or application ID URI), the ``scp`` scope, ``exp``/``nbf``
  with a small leeway;
* the user by ``oid`` (stable), the first time by ``preferred_username`` (then linked).

JOSE comes from joserfc, the library Authlib deprecates its own ``authlib.jose`` in favour of.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.models import User, UserIdentity
from services.text import domain_of, normalise_address
from services.users import user_for_identity

LEEWAY_SECONDS = 120
KEYS_TTL_SECONDS = 3600


class TokenRejected(Exception):
    """The token is not one we accept; the message says why (for logs, not for users)."""


@dataclass
class MicrosoftRules:
    audiences: list[str]
    tenants: list[str]  # allowed tenant ids; "*" allows any (multi-tenant apps)
    scope: str
    authority: str = "https://login.microsoftonline.com"


@dataclass
class RemoteKeys:
    """The identity platform's signing keys, cached, fetched again for an unknown key id
    (keys roll over) but at most once a minute."""

    url: str
    fetched_at: float = 0.0
    keys: KeySet | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def key_set(self, kid: str | None) -> KeySet:
        with self.lock:
            stale = time.monotonic() - self.fetched_at > KEYS_TTL_SECONDS
            unknown = self.keys is not None and kid is not None and not any(k.kid == kid for k in self.keys.keys)
            if self.keys is None or stale or (unknown and time.monotonic() - self.fetched_at > 60):
                with urllib.request.urlopen(self.url, timeout=5) as response:  # noqa: S310 - a configured https URL
                    self.keys = KeySet.import_key_set(json.load(response))
                self.fetched_at = time.monotonic()
            return self.keys


def verify_microsoft_token(token: str, rules: MicrosoftRules, keys: RemoteKeys, now: int | None = None) -> dict[str, Any]:
    try:
        header = json.loads(_b64(token.split(".")[0]))
    except (ValueError, IndexError) as error:
        raise TokenRejected("not a JWT") from error
    if header.get("alg") != "RS256":
        raise TokenRejected(f"algorithm {header.get('alg')!r} is not accepted")
    try:
        decoded = jwt.decode(token, keys.key_set(header.get("kid")), algorithms=["RS256"])
    except JoseError as error:
        raise TokenRejected(f"signature: {error}") from error
    claims = decoded.claims
    tenant = str(claims.get("tid", ""))
    if "*" not in rules.tenants and tenant not in rules.tenants:
        raise TokenRejected(f"tenant {tenant!r} is not allowed")
    issuers = [f"{rules.authority}/{tenant}/v2.0", f"https://sts.windows.net/{tenant}/"]
    registry = jwt.JWTClaimsRegistry(
        now=now,
        leeway=LEEWAY_SECONDS,
        iss={"essential": True, "values": issuers},
        aud={"essential": True, "values": rules.audiences},
        exp={"essential": True},
        oid={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError as error:
        raise TokenRejected(f"claims: {error}") from error
    if rules.scope not in str(claims.get("scp", "")).split():
        raise TokenRejected(f"scope {rules.scope!r} missing")
    return claims


def user_for_microsoft_claims(session: Session, claims: dict[str, Any]) -> User | None:
    """The user an Office SSO token speaks for (its ``oid``, within its tenant)."""
    return user_for_identity_claims(
        session, "microsoft", str(claims["tid"]), str(claims["oid"]), claims.get("preferred_username") or claims.get("upn")
    )


def user_for_identity_claims(
    session: Session, provider: str, issuer: str, subject: str, address: Any
) -> User | None:
    """The user an identity provider vouches for: by (provider, issuer, subject) once linked;
    the first time by the signed-in address, then linked, so that a later change of address
    does not matter. A provider can only vouch for addresses on domains its tenant verified,
    so a first link is made only where that domain is one of the user's organization's own."""
    user = user_for_identity(session, provider, issuer, subject)
    if user is not None:
        return user
    address = normalise_address(str(address or ""))
    user = session.scalar(select(User).where(User.email == address, User.is_active)) if address else None
    if user is None or domain_of(address) not in (user.organization.domains or []):
        return None
    session.add(UserIdentity(user_id=user.id, provider=provider, issuer=issuer, subject=subject))
    session.flush()
    return user


def user_for_oidc_claims(session: Session, provider: str, claims: dict[str, Any]) -> User | None:
    """The user of an OpenID Connect sign-in (the dialog fallback). Microsoft's id token names
    the same ``oid`` and tenant as its SSO access token, so both ways in find one identity;
    Google's names its issuer and ``sub``, and its address counts only once verified."""
    if provider == "microsoft":
        subject = str(claims.get("oid") or claims["sub"])
        return user_for_identity_claims(session, provider, str(claims.get("tid", "")), subject, claims.get("preferred_username"))
    address = claims.get("email") if claims.get("email_verified") is True else None
    return user_for_identity_claims(session, provider, str(claims["iss"]), str(claims["sub"]), address)


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
