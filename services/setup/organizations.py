"""An organization made, and its settings kept: the first step of a real team's set-up.

``create_organization`` makes the tenant (its name, mail domains, time zone, fiscal year,
locale and currency), the default pipeline, and an invitation for its first admin; the
command ``flask --app wsgi org create`` and the first-run page both call it. ``change_settings``
is the admin's settings page and ``PATCH /api/v1/organization``: every field validated by one
schema, every change audited, and a change of time zone or fiscal year marks the organization
as rebuilding, for the worker to recount its rollups (``rebuild_figures``).

A mail domain belongs to one organization: it is what single sign-on and internal mail are
decided by, so two organizations claiming one domain would open each other's doors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import available_timezones

from babel import Locale, UnknownLocaleError
from babel.numbers import list_currencies
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates
from sqlalchemy import select
from sqlalchemy.orm import Session

from services import latest
from services.access import require_role
from services.audit import record_event
from services.deals import recompute_stage_facts
from services.errors import DomainError
from services.mail.text import domain_of, is_public_domain
from services.models import ADDRESS_LENGTH, CAPTURE_RULES, DOMAIN_LENGTH, Organization, Stage, User, UserIdentity
from services.rollups import rebuild_rollups
from services.schemas import Address, load
from services.setup.people import accept_new_user, open_invitation
from services.types import utcnow

# The pipeline a new organization starts with; its admin renames, reorders and retires stages.
DEFAULT_STAGES = (
    ("Qualify", Decimal("0.10"), 14),
    ("Discovery", Decimal("0.25"), 21),
    ("Proposal", Decimal("0.50"), 21),
    ("Negotiation", Decimal("0.75"), 14),
)
DEFAULT_LOSS_REASONS = ["Price", "Chose a competitor", "No budget", "No decision", "Timing"]
MAX_DOMAINS = 20
_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
ZONES = frozenset(available_timezones())
CURRENCIES = frozenset(list_currencies())


class Domain(fields.String):
    default_error_messages = {
        "invalid_domain": "Enter a mail domain such as example.com.",
        "public_domain": "A public mail domain (gmail.com, outlook.com…) cannot be an organization's own.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        domain = super()._deserialize(value, attr, data, **kwargs).strip().lower().removeprefix("@").rstrip(".")
        if len(domain) > DOMAIN_LENGTH or not _DOMAIN.fullmatch(domain):
            raise self.make_error("invalid_domain")
        if is_public_domain(domain):
            raise self.make_error("public_domain")
        return domain


class DomainList(fields.List):
    """Domains as a list (the API) or as one line of text split at commas and spaces (a form)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(Domain(), validate=validate.Length(min=1, max=MAX_DOMAINS), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        if isinstance(value, str):
            value = [part for part in re.split(r"[\s,;]+", value) if part]
        return list(dict.fromkeys(super()._deserialize(value, attr, data, **kwargs)))


class ReasonList(fields.List):
    """Loss reasons, as a list or as one per line."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            fields.String(validate=validate.Length(min=1, max=200)), validate=validate.Length(max=50), **kwargs
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        if isinstance(value, str):
            value = value.splitlines()
        if isinstance(value, list):  # blank lines say nothing
            value = [item.strip() if isinstance(item, str) else item for item in value]
            value = [item for item in value if item != ""]
        return list(dict.fromkeys(super()._deserialize(value, attr, data, **kwargs)))


def _zone(name: str) -> None:
    if name not in ZONES:
        raise ValidationError("Choose a time zone from the list (such as Europe/Paris).")


def _currency(code: str) -> None:
    if code not in CURRENCIES:
        raise ValidationError("Enter an ISO 4217 currency code, such as USD or EUR.")


def _locale(name: str) -> None:
    try:
        Locale.parse(name)
    except (UnknownLocaleError, ValueError, TypeError):
        raise ValidationError("Enter a locale such as en_US, fr_FR or de_DE.") from None


class OrganizationSchema(Schema):
    """Everything of the organization an admin sets, by page or by API; the same names as
    ``Organization`` and its ``DEFAULT_SETTINGS``."""

    class Meta:
        unknown = EXCLUDE

    name = fields.String(validate=validate.Length(min=1, max=200))
    domains = DomainList()
    time_zone = fields.String(validate=_zone)
    fiscal_year_start_month = fields.Integer(validate=validate.Range(1, 12))
    currency = fields.String(validate=_currency)
    locale = fields.String(validate=_locale)
    going_dark_days = fields.Integer(validate=validate.Range(14, 42))
    neglected_days = fields.Integer(validate=validate.Range(1, 365))
    drawdown_threshold = fields.Float(validate=validate.Range(0.05, 1.0))
    lead_response_target_hours = fields.Integer(validate=validate.Range(1, 24 * 30))
    log_internal_mail = fields.Boolean()
    body_retention_months = fields.Integer(allow_none=True, validate=validate.Range(1, 120))
    loss_reasons = ReasonList()
    capture_rule = fields.String(
        validate=validate.OneOf(CAPTURE_RULES, error="Choose known contacts, known domains, or new contacts too.")
    )
    backfill_days = fields.Integer(validate=validate.Range(0, 365))
    health_alert_below = fields.Integer(validate=validate.Range(1, 100))

    @validates("name")
    def _named(self, value: str, **_: Any) -> None:
        if not value.strip():
            raise ValidationError("Name the organization.")


class NewOrganizationSchema(OrganizationSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    domains = DomainList(required=True)


COLUMNS = ("name", "domains", "time_zone", "fiscal_year_start_month", "currency")
SETTINGS = tuple(key for key in Organization.DEFAULT_SETTINGS)
RECOUNTED = ("time_zone", "fiscal_year_start_month")  # the rollups' days and fiscal months depend on them


def organization_values(org: Organization) -> dict[str, Any]:
    """The organization's settings as the schema names them (the page's form, the API's answer)."""
    values: dict[str, Any] = {name: getattr(org, name) for name in COLUMNS}
    values |= {key: org.setting(key) for key in SETTINGS}
    return values


def _cleaned(data: dict[str, Any]) -> dict[str, Any]:
    """Text fields as typed, trimmed; a currency code in capitals."""
    for key in ("name", "time_zone", "locale", "currency"):
        if isinstance(data.get(key), str):
            data[key] = data[key].strip()
    if isinstance(data.get("currency"), str):
        data["currency"] = data["currency"].upper()
    return data


def _check_domains_free(session: Session, domains: list[str], organization_id: int | None) -> None:
    """A domain is one organization's: refused when another already has it."""
    taken = {
        domain
        for other_id, other_domains in session.execute(select(Organization.id, Organization.domains))
        if other_id != organization_id
        for domain in other_domains or []
    }
    clash = [domain for domain in domains if domain in taken]
    if clash:
        raise DomainError(
            "Another organization already uses this domain.",
            {"domains": [f"{', '.join(clash)} belongs to another organization."]},
        )


@dataclass(frozen=True)
class SignIn:
    """The first admin's single sign-on identity, and the directory it maps to the organization."""

    provider: str  # "microsoft" or "google"
    issuer: str
    subject: str
    directory: str  # the Microsoft tenant id, or the Google Workspace's domain (``hd``)


@dataclass(frozen=True)
class Founded:
    organization: Organization
    admin: User | None
    invitation_token: str | None


def create_organization(
    session: Session,
    data: dict[str, Any],
    admin_email: str,
    admin_name: str = "",
    *,
    password: str | None = None,
    sign_in: SignIn | None = None,
    now: datetime | None = None,
) -> Founded:
    """A new organization with the default pipeline and its first admin. With ``password`` the
    admin's account is made at once (the first-run page); with ``sign_in``, the admin's account
    is their single sign-on identity, and its directory (a Microsoft tenant, a Google Workspace)
    is mapped to the organization; with neither, the admin is invited and the invitation's
    token is returned (the command prints its link)."""
    now = now or utcnow()
    values = load(NewOrganizationSchema, _cleaned(dict(data)))
    address = load(_AdminSchema, {"email": admin_email})["email"]
    _check_domains_free(session, values["domains"], None)
    if session.scalar(select(User.id).where(User.email == address)) is not None:
        raise DomainError("That address already has an account.", {"admin": ["This address already has an account."]})
    org = Organization(
        name=values["name"].strip(),
        domains=values["domains"],
        time_zone=values.get("time_zone", "UTC"),
        fiscal_year_start_month=values.get("fiscal_year_start_month", 1),
        currency=values.get("currency", "USD"),
        settings={"loss_reasons": DEFAULT_LOSS_REASONS} | {key: values[key] for key in SETTINGS if key in values},
        created_at=now,
    )
    session.add(org)
    session.flush()
    for position, (name, probability, sla) in enumerate(DEFAULT_STAGES, start=1):
        session.add(Stage(organization_id=org.id, name=name, position=position, probability=probability, sla_days=sla))
    name = (admin_name or "").strip() or address.split("@")[0]
    if sign_in is not None:
        if domain_of(address) not in org.domains:
            raise DomainError(
                "Sign in with an account on one of the organization's domains.",
                {"domains": [f"{domain_of(address)} is not among the domains given."]},
            )
        column = "microsoft_tenant" if sign_in.provider == "microsoft" else "google_workspace"
        taken = session.scalar(select(Organization.id).where(getattr(Organization, column) == sign_in.directory))
        if taken is not None:
            raise DomainError("That directory already signs in to another organization.")
        setattr(org, column, sign_in.directory)
        admin = accept_new_user(session, org, address, name, "admin", None, None, now)
        session.add(
            UserIdentity(user_id=admin.id, provider=sign_in.provider, issuer=sign_in.issuer, subject=sign_in.subject)
        )
        record_event(
            session, admin, "create", org, after=organization_values(org) | {"id": org.id, column: sign_in.directory}
        )
        return Founded(org, admin, None)
    if password is not None:
        admin = accept_new_user(session, org, address, name, "admin", None, password, now)
        record_event(session, admin, "create", org, after=organization_values(org) | {"id": org.id})
        return Founded(org, admin, None)
    invitation, token = open_invitation(session, org, None, address, name, "admin", None, now)
    record_event(session, None, "create", org, after=organization_values(org) | {"id": org.id})
    return Founded(org, None, token)


class _AdminSchema(Schema):
    email = Address(required=True, validate=validate.Length(max=ADDRESS_LENGTH))


def change_settings(session: Session, actor: User, data: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The admin's change to the organization's settings: what changed, as (before, after).
    A change of time zone or fiscal year marks the organization as rebuilding its figures; the
    caller asks the worker to recount them (``rebuild_figures``)."""
    require_role(actor, "admin")
    org = actor.organization
    values = load(OrganizationSchema, _cleaned(dict(data)))
    if "domains" in values:
        _check_domains_free(session, values["domains"], org.id)
    before = organization_values(org)
    changed = {key: (before[key], value) for key, value in values.items() if before[key] != value}
    if not changed:
        return {}
    settings = dict(org.settings or {})
    for key, (_, value) in changed.items():
        if key in COLUMNS:
            setattr(org, key, value)
        else:
            settings[key] = value
    org.settings = settings
    if any(key in changed for key in RECOUNTED):
        org.rebuilding_since = utcnow()
    record_event(
        session,
        actor,
        "settings",
        org,
        before={key: old for key, (old, _) in changed.items()},
        after={key: new for key, (_, new) in changed.items()},
    )
    return changed


def rebuild_figures(session: Session, organization_id: int) -> int:
    """The worker's recount after a change of time zone or fiscal year (or an import): the
    rollups, the deals' stage facts and latest times; then the dashboard's notice goes."""
    org = session.get(Organization, organization_id)
    if org is None:
        return 0
    rows = rebuild_rollups(session, org)
    recompute_stage_facts(session, org.id)
    latest.recompute(session, org.id)
    org.rebuilding_since = None
    session.commit()
    return rows


def has_organization(session: Session) -> bool:
    """Whether the store holds an organization: with none, the first-run page is open."""
    return session.scalar(select(Organization.id).limit(1)) is not None


def check_new_organization(session: Session, data: dict[str, Any]) -> dict[str, Any]:
    """The first-run form checked before a sign-in round trip: what ``create_organization`` will refuse."""
    values = load(NewOrganizationSchema, _cleaned(dict(data)))
    _check_domains_free(session, values["domains"], None)
    return values
