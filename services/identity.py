"""Signing in with a token from the mail client: Microsoft identity platform access tokens.

The Outlook pane asks Office for an access token to this API (``Office.auth.getAccessToken``)
and hands it over once; we check it the way Microsoft's token rules say and map it to a user:

* the signature, with the identity platform's published keys (JWKS), RS256 only, so ``none``
  and HMAC tokens signed with a public key are refused;
* the issuer, per tenant: ``https://login.microsoftonline.com/{tid}/v2.0`` (v2) or
  ``https://sts.windows.net/{tid}/`` (v1), for an allowed tenant only;
* the audience (our client id or application ID URI), the ``scp`` scope, ``exp``/``nbf``
  with a small leeway;
* the tenant's organization: each allowed tenant maps to one organization (by a domain it
  owns), and a token signs in to that organization only, whatever its ``preferred_username``
  says; a mismatch is refused and written to that organization's audit trail;
* the user by (``tid``, ``oid``) (stable), the first time by ``preferred_username`` (then
  linked).

JOSE comes from joserfc, the library Authlib deprecates its own ``authlib.jose`` in favour of.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.models import AuditEvent, Organization, User, UserIdentity
from services.mail.text import domain_of, normalise_address
from services.setup.people import accept_by_address, open_invitation_for
from services.users import user_for_identity

LEEWAY_SECONDS = 120
KEYS_TTL_SECONDS = 3600
VERIFIED_TOKENS = 4096  # signatures remembered per key set


class TokenRejected(Exception):
    """The token is not one we accept; the message says why (for logs, not for users)."""


class KeysUnavailable(Exception):
    """The signing keys could not be had: the key URL is down, slow, or answers something that
    is not a key set. Nobody can sign in until it answers (a 503, not a refusal)."""


@dataclass
class MicrosoftRules:
    audiences: list[str]
    tenants: dict[str, str]  # allowed tenant id → a domain of the one organization it signs in to
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
    # Tokens whose signature these keys verified, with their claims: Google sends the same
    # ID tokens with every request for up to an hour. Only the signature is remembered; the
    # claims (expiry, audience, issuer) are checked on every use.
    verified: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)

    def key_set(self, kid: str | None) -> KeySet:
        with self.lock:
            stale = time.monotonic() - self.fetched_at > KEYS_TTL_SECONDS
            unknown = self.keys is not None and kid is not None and not any(k.kid == kid for k in self.keys.keys)
            if self.keys is None or stale or (unknown and time.monotonic() - self.fetched_at > 60):
                self.keys = self._fetch()
                self.fetched_at = time.monotonic()
                self.verified.clear()  # a key may have been withdrawn
            return self.keys

    def remember(self, token: str, claims: dict[str, Any]) -> None:
        with self.lock:
            self.verified[token] = claims
            while len(self.verified) > VERIFIED_TOKENS:
                self.verified.popitem(last=False)

    def recall(self, token: str) -> dict[str, Any] | None:
        with self.lock:
            return self.verified.get(token)

    def _fetch(self) -> KeySet:
        try:
            with urllib.request.urlopen(self.url, timeout=5) as response:  # noqa: S310 - a configured https URL
                published = json.load(response)
            if not isinstance(published, dict) or not isinstance(published.get("keys"), list):
                raise ValueError("not a JSON Web Key Set")
            return KeySet.import_key_set(published)  # type: ignore[arg-type]
        except (OSError, ValueError, TypeError, KeyError, JoseError) as error:
            raise KeysUnavailable(f"{self.url}: {error!r}") from error


def _signed_claims(token: str, keys: RemoteKeys) -> dict[str, Any]:
    """The claims of an RS256 JWT whose signature one of ``keys`` verifies (nothing else
    checked yet); ``none``, HMAC and anything that is not a JWT refused."""
    if (known := keys.recall(token)) is not None:
        return dict(known)
    try:
        header = json.loads(_b64(token.split(".")[0]))
    except (ValueError, IndexError) as error:
        raise TokenRejected("not a JWT") from error
    if not isinstance(header, dict):
        raise TokenRejected("the JWT header is not an object")
    if header.get("alg") != "RS256":
        raise TokenRejected(f"algorithm {header.get('alg')!r} is not accepted")
    try:
        kid = header.get("kid")
        decoded = jwt.decode(token, keys.key_set(kid if isinstance(kid, str) else None), algorithms=["RS256"])
    except (JoseError, ValueError, TypeError) as error:
        raise TokenRejected(f"signature: {error}") from error
    if not isinstance(decoded.claims, dict):
        raise TokenRejected("the claims are not an object")
    keys.remember(token, decoded.claims)
    return dict(decoded.claims)


def _validate(
    claims: dict[str, Any], now: int | None, issuers: list[str], audiences: list[str], *required: str
) -> dict[str, Any]:
    """The registered claims checked: issuer and audience among those given, unexpired (and
    not used before ``nbf``) with a small leeway, and ``required`` present."""
    registry = jwt.JWTClaimsRegistry(
        now=now,
        leeway=LEEWAY_SECONDS,
        iss={"essential": True, "values": issuers},
        aud={"essential": True, "values": audiences},
        exp={"essential": True},
        **{name: {"essential": True} for name in required},
    )
    try:
        registry.validate(claims)
    except JoseError as error:
        raise TokenRejected(f"claims: {error}") from error
    return claims


def verify_microsoft_token(
    token: str, rules: MicrosoftRules, keys: RemoteKeys, now: int | None = None
) -> dict[str, Any]:
    claims = _signed_claims(token, keys)
    tenant = str(claims.get("tid", ""))
    if tenant.lower() not in rules.tenants:
        raise TokenRejected(f"tenant {tenant!r} is not allowed")
    issuers = [f"{rules.authority}/{tenant}/v2.0", f"https://sts.windows.net/{tenant}/"]
    _validate(claims, now, issuers, rules.audiences, "oid")
    if rules.scope not in str(claims.get("scp", "")).split():
        raise TokenRejected(f"scope {rules.scope!r} missing")
    return claims


# -- Google: the Gmail add-on's requests ------------------------------------------------------------

GOOGLE_ISSUERS = ["https://accounts.google.com", "accounts.google.com"]


@dataclass
class GoogleRules:
    """What a Gmail add-on request must carry (``verify_addon_request``)."""

    service_account: str  # the deployment's system service account: the system token's ``email``
    client_ids: list[str]  # the deployment's OAuth client id: the user ID token's ``aud``
    workspaces: dict[str, str]  # Google Workspace domain (``hd``) → a domain of the one organization it signs in to
    audience: str | None = None  # a configured audience accepted for the system token besides the endpoint URL


def verify_google_token(token: str, audiences: list[str], keys: RemoteKeys, now: int | None = None) -> dict[str, Any]:
    """A Google-signed ID token: signature by Google's published keys, issuer, audience,
    expiry (small leeway), an ``email`` that Google verified."""
    claims = _validate(_signed_claims(token, keys), now, GOOGLE_ISSUERS, audiences, "sub", "email")
    if claims.get("email_verified") not in (True, "true"):
        raise TokenRejected("the email is not verified")
    return claims


def verify_addon_request(
    system_token: str, user_token: str, endpoint_url: str, rules: GoogleRules, keys: RemoteKeys, now: int | None = None
) -> dict[str, Any]:
    """A Gmail add-on request: the bearer is the add-on's system ID token, made out to this very
    endpoint (a token for another endpoint is refused) and to the deployment's service
    account; the user is the one the user ID token names. Returns the user's claims."""
    audiences = [endpoint_url] + ([rules.audience] if rules.audience else [])
    system = verify_google_token(system_token, audiences, keys, now)
    if not rules.service_account or str(system.get("email", "")).lower() != rules.service_account.lower():
        raise TokenRejected("the system token is not the add-on's service account")
    return verify_google_token(user_token, rules.client_ids, keys, now)


def user_for_google_claims(session: Session, claims: dict[str, Any], workspaces: dict[str, str]) -> User | None:
    """The user a Gmail add-on's user ID token names: by Google's ``sub`` once linked, the first
    time by the verified address, within the one organization its Workspace domain maps to.

    The token must carry ``hd``, the Google Workspace the account belongs to: a personal Google
    account (no ``hd``) that once verified a company address is not the company's account, and
    signs in as nobody."""
    address = normalise_address(str(claims.get("email", "")))
    workspace = str(claims.get("hd") or "").lower()
    if not workspace or workspace not in workspaces:
        return None
    return user_for_identity_claims(
        session, "google", GOOGLE_ISSUERS[0], str(claims["sub"]), address, organization_domain=workspaces[workspace]
    )


def user_for_microsoft_claims(session: Session, claims: dict[str, Any], tenants: dict[str, str]) -> User | None:
    """The user an Office SSO token speaks for: its (``tid``, ``oid``), within the one
    organization its tenant maps to."""
    tenant = str(claims["tid"])
    return user_for_identity_claims(
        session,
        "microsoft",
        tenant,
        str(claims["oid"]),
        claims.get("preferred_username") or claims.get("upn"),
        organization_domain=tenants.get(tenant.lower()),
    )


def user_for_identity_claims(
    session: Session, provider: str, issuer: str, subject: str, address: Any, *, organization_domain: str | None = None
) -> User | None:
    """The user an identity provider vouches for: by (provider, issuer, subject) once linked;
    the first time by the signed-in address, then linked, so that a later change of address
    does not matter. A provider can only vouch for addresses on domains its tenant verified,
    so a first link is made only where that domain is one of the user's organization's own.

    ``organization_domain`` names the organization the issuer (a Microsoft tenant) signs in
    to; a user of any other organization is refused, and the attempt audited there."""
    user = user_for_identity(session, provider, issuer, subject)
    if user is None:
        address = normalise_address(str(address or ""))
        user = session.scalar(select(User).where(User.email == address, User.is_active)) if address else None
        if user is None and address:
            user = _invited(session, address, organization_domain)
        if user is None or domain_of(address) not in (user.organization.domains or []):
            return None
        linking = True
    else:
        linking = False
    if organization_domain is not None and organization_domain not in (user.organization.domains or []):
        _refused(session, user, provider, issuer, "the issuer signs in to another organization")
        return None
    if linking and any(identity.provider == provider for identity in user.identities):
        # Another account of the same provider claims a user who has one already: a second way
        # in is an admin's to grant, never made by an address alone.
        _refused(session, user, provider, issuer, "a second identity of this provider needs an admin")
        return None
    if linking:
        session.add(UserIdentity(user_id=user.id, provider=provider, issuer=issuer, subject=subject))
        session.flush()
    return user


def _invited(session: Session, address: str, organization_domain: str | None) -> User | None:
    """Single sign-on with an invited address accepts the invitation: the provider vouched for an
    address on one of the inviting organization's own domains, through the directory that
    organization's sign-in maps to (when one is named)."""
    invitation = open_invitation_for(session, address)
    if invitation is None:
        return None
    domains = invitation.organization.domains or []
    if domain_of(address) not in domains or (organization_domain is not None and organization_domain not in domains):
        return None
    return accept_by_address(session, address, None)


def directories(session: Session, configured: dict[str, str], provider: str) -> dict[str, str]:
    """The directories whose single sign-on opens an organization: those the settings map
    (``INBOXCRM_MS_TENANTS``, the Gmail add-on's Workspaces) and those recorded when an
    organization was set up with its first admin's sign-in; each → a domain of its organization."""
    column = Organization.microsoft_tenant if provider == "microsoft" else Organization.google_workspace
    found = dict(configured)
    for directory, domains in session.execute(select(column, Organization.domains).where(column.is_not(None))):
        if domains:
            found.setdefault(directory.lower(), domains[0])
    return found


def _refused(session: Session, user: User, provider: str, issuer: str, reason: str) -> None:
    session.add(
        AuditEvent(
            organization_id=user.organization_id,
            actor_id=None,
            action="sign_in_refused",
            record_type="users",
            record_id=user.id,
            before=None,
            after={"provider": provider, "issuer": issuer, "reason": reason},
        )
    )
    session.flush()


def user_for_oidc_claims(
    session: Session, provider: str, claims: dict[str, Any], tenants: dict[str, str] | None = None
) -> User | None:
    """The user of an OpenID Connect sign-in (the dialog fallback). Microsoft's id token names
    the same ``oid`` and tenant as its SSO access token, so both ways in find one identity, and
    where tenants are mapped the same tenant rule holds; Google's names its issuer and ``sub``,
    and its address counts only once verified."""
    if provider == "microsoft":
        subject = str(claims.get("oid") or claims["sub"])
        tenant = str(claims.get("tid", ""))
        if tenants and tenant.lower() not in tenants:
            return None
        return user_for_identity_claims(
            session,
            provider,
            tenant,
            subject,
            claims.get("preferred_username"),
            organization_domain=(tenants or {}).get(tenant.lower()),
        )
    address = claims.get("email") if claims.get("email_verified") is True else None
    if provider == "google":
        # Google's: a Workspace account only (``hd``), on one of the organization's own domains.
        workspace = str(claims.get("hd") or "").lower()
        if not workspace:
            return None
        return user_for_identity_claims(
            session, provider, str(claims["iss"]), str(claims["sub"]), address, organization_domain=workspace
        )
    return user_for_identity_claims(session, provider, str(claims["iss"]), str(claims["sub"]), address)


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
