"""The central CRM store: every object of PRODUCT.md as a typed SQLAlchemy model.

The constraints that keep the data right live here, so that every path into the store (the
pane, the Gmail cards, the sync API, imports, the demo generator) is held to them:

* every row carries ``organization_id``; lookups are indexed with it in front;
* e-mail addresses and domains are stored lower-case and trimmed (a CHECK enforces it), so
  a lookup is an index hit rather than a ``lower()`` scan;
* money is ``Numeric``; timestamps are UTC and time-zone aware (``UTCDateTime``);
* an activity's external id (internetMessageId, Gmail id, calendar id) is unique per
  organization, which is what makes logging the same message twice a no-op;
* records are soft-deleted (``deleted_at``): correspondence is never hard-deleted by reps.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ColumnElement,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    literal_column,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from services import search_index
from services.types import UTCDateTime, utcnow

# Named constraints so that Alembic migrations are stable on both back ends.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Every closed vocabulary of the store, as a StrEnum for the code that names one value
# (``DealStatus.WON`` equals "won") and as the tuple of its values for check constraints,
# schemas and choices.


class Role(StrEnum):
    REP = "rep"
    MANAGER = "manager"
    ADMIN = "admin"


class ActivityType(StrEnum):
    EMAIL = "email"
    CALL = "call"
    MEETING = "meeting"
    VISIT = "visit"
    NOTE = "note"
    TASK = "task"
    SMS = "sms"
    WHATSAPP = "whatsapp"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class Outcome(StrEnum):
    CONNECTED = "connected"
    NO_ANSWER = "no_answer"
    VOICEMAIL = "voicemail"
    BUSY = "busy"
    HELD = "held"
    NO_SHOW = "no_show"
    RESCHEDULED = "rescheduled"
    CANCELLED = "cancelled"


class Source(StrEnum):
    """Where an activity or a record came from."""

    OUTLOOK = "outlook"
    GMAIL = "gmail"
    WEB = "web"
    API = "api"
    IMPORT = "import"


class LeadChannel(StrEnum):
    """How a lead reached the organization (``Lead.source``; ``LeadSource`` is an intake form)."""

    WEB_FORM = "web_form"
    EMAIL = "email"
    PHONE = "phone"
    WHATSAPP = "whatsapp"
    REFERRAL = "referral"
    EVENT = "event"
    PARTNER = "partner"
    OTHER = "other"


class LeadStatus(StrEnum):
    NEW = "new"
    WORKING = "working"
    QUALIFIED = "qualified"
    DISQUALIFIED = "disqualified"


class DealStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class QuotaPeriod(StrEnum):
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class QuotaMetric(StrEnum):
    ACTIVITIES = "activities"
    WON_REVENUE = "won_revenue"
    WON_DEALS = "won_deals"


def _values(vocabulary: type[StrEnum]) -> tuple[str, ...]:
    return tuple(member.value for member in vocabulary)


ROLES = _values(Role)
ACTIVITY_TYPES = _values(ActivityType)
DIRECTIONS = _values(Direction)
OUTCOMES = _values(Outcome)
# What a rep logs by hand beside a mail: the pane's choices.
LOGGED_BY_HAND = (ActivityType.CALL.value, ActivityType.MEETING.value, ActivityType.VISIT.value)
# Which outcomes a type can have: a call is answered or not, a meeting or visit held or not.
CALL_OUTCOMES = tuple(o.value for o in (Outcome.CONNECTED, Outcome.NO_ANSWER, Outcome.VOICEMAIL, Outcome.BUSY))
MEETING_OUTCOMES = tuple(o.value for o in (Outcome.HELD, Outcome.NO_SHOW, Outcome.RESCHEDULED, Outcome.CANCELLED))
OUTCOMES_OF = {"call": CALL_OUTCOMES, "meeting": MEETING_OUTCOMES, "visit": MEETING_OUTCOMES}
SOURCES = _values(Source)
LEAD_SOURCES = _values(LeadChannel)
LEAD_STATUSES = _values(LeadStatus)
DEAL_STATUSES = _values(DealStatus)
QUOTA_PERIODS = _values(QuotaPeriod)
QUOTA_METRICS = _values(QuotaMetric)

ADDRESS_LENGTH = 254  # RFC 5321's limit on a forward path
DOMAIN_LENGTH = 253
MONEY = Numeric(14, 2)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _normalised(column: str) -> str:
    return f"{column} = lower(trim({column}))"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), Decimal: MONEY, dict[str, Any]: JSON}

    def __repr__(self) -> str:
        label = getattr(self, "name", None) or getattr(self, "address", None) or getattr(self, "domain", None)
        return f"<{type(self).__name__} {getattr(self, 'id', None)}{f' {label!r}' if label else ''}>"


class OrgScoped:
    """Every tenant-owned row names its organization; services filter on it first."""

    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))


class Synced(OrgScoped):
    """A record other systems sync (``services.integration.sync``): the sequence number of the transaction
    that last changed it, which is also its version."""

    sync_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Organization(Base):
    __tablename__ = "organizations"
    __table_args__ = (
        CheckConstraint("fiscal_year_start_month BETWEEN 1 AND 12", name="fiscal_month"),
        CheckConstraint("length(currency) = 3", name="currency_code"),
        # Unique indexes rather than constraints: SQLite adds an index in place, where a constraint
        # rebuilds the table (and dropping the old one would cascade to every row that names it).
        Index("uq_organizations_microsoft_tenant", "microsoft_tenant", unique=True),
        Index("uq_organizations_google_workspace", "google_workspace", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    fiscal_year_start_month: Mapped[int] = mapped_column(SmallInteger, default=1)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    # The organization's own mail domains: mail among them only is internal.
    domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Moves on with every change to the organization's learned lexicon (``services.lexicon``):
    # a process that scores with a copy of it knows when to read it again.
    lexicon_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The last sequence number handed to a write transaction (``services.integration.sync``).
    change_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The directories whose single sign-on opens this organization (``services.identity``): a
    # Microsoft Entra tenant id, a Google Workspace's primary domain (``hd``). Each maps to one
    # organization; the first admin's sign-in at set-up records them (``services.setup``).
    microsoft_tenant: Mapped[str | None] = mapped_column(String(64))
    google_workspace: Mapped[str | None] = mapped_column(String(DOMAIN_LENGTH))
    # Set while a change of time zone or fiscal year has the worker rebuild the rollups: the
    # dashboard says its figures are being recounted (``services.setup.organizations``).
    rebuilding_since: Mapped[datetime | None]

    DEFAULT_SETTINGS: dict[str, Any] = {
        "going_dark_days": 21,
        "neglected_days": 14,
        "drawdown_threshold": 0.6,
        "lead_response_target_hours": 24,
        "log_internal_mail": False,
        "locale": "en_US",  # how amounts are typed and shown (Babel's name: en_US, fr_FR, de_DE, pl_PL…)
        "body_retention_months": None,  # mail bodies older than this are removed (``services.privacy``); None keeps them
        "loss_reasons": [],  # when set, a lost deal's reason is one of these (``services.deals``)
        # Automatic capture (``services.capture.rules``): which mail of a connected mailbox is
        # taken: "contacts" (a known contact takes part), "domains" (or an address at a known
        # account's domain), "new_contacts" (and such an address becomes a contact).
        "capture_rule": "domains",
        # A deal's owner is told when a captured mail brings its health below this (0-100).
        "health_alert_below": 40,
        "backfill_days": 90,  # how far back a newly connected mailbox is read
    }

    def setting(self, key: str) -> Any:
        return (self.settings or {}).get(key, self.DEFAULT_SETTINGS[key])


class Team(OrgScoped, Base):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    members: Mapped[list[User]] = relationship(back_populates="team")


class User(Synced, Base):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("email"),
        CheckConstraint(_in("role", ROLES), name="role"),
        CheckConstraint(_normalised("email"), name="email_normalised"),
        Index("ix_users_team", "organization_id", "team_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    email: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="rep")
    password_hash: Mapped[str | None] = mapped_column(String(256))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Raised to revoke every pane token issued to this user so far.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    organization: Mapped[Organization] = relationship()
    team: Mapped[Team | None] = relationship(back_populates="members")
    identities: Mapped[list[UserIdentity]] = relationship(back_populates="user", cascade="all, delete-orphan")

    @property
    def sees_team(self) -> bool:
        """A manager or an admin: the team panel, the dashboard and the team's figures are theirs
        to see (``services.reports``)."""
        return self.role in (Role.MANAGER, Role.ADMIN)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


class UserIdentity(Base):
    """A second way in: an identity provider's subject (Microsoft ``oid``, Google ``sub``)."""

    __tablename__ = "user_identities"
    __table_args__ = (UniqueConstraint("provider", "issuer", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    issuer: Mapped[str] = mapped_column(String(255), default="")
    subject: Mapped[str] = mapped_column(String(255))
    user: Mapped[User] = relationship(back_populates="identities")


class Invitation(OrgScoped, Base):
    """An invitation to join the organization: single-use, expiring, by e-mail (``services.setup.people``).

    Only the token's SHA-256 is kept, as an API token's is; the user is made when it is accepted,
    with the role and team the admin chose, by a password set on its page or by single sign-on
    with the invited address."""

    __tablename__ = "invitations"
    __table_args__ = (
        CheckConstraint(_in("role", ROLES), name="role"),
        CheckConstraint(_normalised("email"), name="email_normalised"),
        Index("ix_invitations_email", "email", "accepted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16), default="rep")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    organization: Mapped[Organization] = relationship()
    team: Mapped[Team | None] = relationship()


class TeamMove(OrgScoped, Base):
    """A rep's move from one team to another, on a day (``services.setup.teams``). A team's
    figures for a period count the people who were its members on the period's last day
    (``services.reports.scope``): the periods before a move keep the rep's work in the old team."""

    __tablename__ = "team_moves"
    __table_args__ = (Index("ix_team_moves_org", "organization_id", "on_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    from_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    to_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    on_day: Mapped[date] = mapped_column(Date)  # the first day in the new team
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Account(Synced, Base):
    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
        Index("ix_accounts_name", "organization_id", "name"),
        Index("ix_accounts_parent", "parent_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    city: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]
    # The account's latest live activity, kept with every activity write (``services.latest``).
    last_activity_at: Mapped[datetime | None]

    parent: Mapped[Account | None] = relationship(remote_side=[id], back_populates="branches")
    branches: Mapped[list[Account]] = relationship(back_populates="parent")
    domains: Mapped[list[AccountDomain]] = relationship(back_populates="account", cascade="all, delete-orphan")
    owner: Mapped[User | None] = relationship()


class AccountDomain(OrgScoped, Base):
    __tablename__ = "account_domains"
    __table_args__ = (
        UniqueConstraint("organization_id", "domain", name="uq_account_domains_lookup"),
        CheckConstraint(_normalised("domain"), name="domain_normalised"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    domain: Mapped[str] = mapped_column(String(DOMAIN_LENGTH))
    account: Mapped[Account] = relationship(back_populates="domains")


class Contact(Synced, Base):
    __tablename__ = "contacts"
    __table_args__ = (Index("ix_contacts_account", "organization_id", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]

    account: Mapped[Account | None] = relationship()
    emails: Mapped[list[ContactEmail]] = relationship(back_populates="contact", cascade="all, delete-orphan")
    phones: Mapped[list[ContactPhone]] = relationship(back_populates="contact", cascade="all, delete-orphan")


class ContactEmail(OrgScoped, Base):
    __tablename__ = "contact_emails"
    __table_args__ = (
        UniqueConstraint("organization_id", "address", name="uq_contact_emails_lookup"),
        CheckConstraint(_normalised("address"), name="address_normalised"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))
    contact: Mapped[Contact] = relationship(back_populates="emails")


class ContactPhone(OrgScoped, Base):
    __tablename__ = "contact_phones"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16), default="work")
    contact: Mapped[Contact] = relationship(back_populates="phones")


class Stage(OrgScoped, Base):
    """One step of the organization's pipeline. Won and lost are a deal's status, not stages."""

    __tablename__ = "stages"
    __table_args__ = (
        UniqueConstraint("organization_id", "name"),
        UniqueConstraint("organization_id", "position"),
        CheckConstraint("probability >= 0 AND probability <= 1", name="probability_range"),
        CheckConstraint("sla_days IS NULL OR sla_days > 0", name="sla_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    position: Mapped[int] = mapped_column(Integer)
    probability: Mapped[Decimal] = mapped_column(Numeric(5, 4))
    sla_days: Mapped[int | None] = mapped_column(Integer)
    # A retired stage takes no new deals and leaves the pipeline's choices; the deals and the
    # stage changes that name it keep it, and so do the figures of the periods they fall in.
    retired_at: Mapped[datetime | None]

    # A deal keeps the positions it entered as bits of one integer (``Opportunity.stages_reached``).
    MAX_POSITION = 62

    @validates("position")
    def _position_fits(self, key: str, position: int) -> int:
        if not 0 <= position <= self.MAX_POSITION:
            raise ValueError(f"a stage's position is from 0 to {self.MAX_POSITION}")
        return position


class Lead(Synced, Base):
    __tablename__ = "leads"
    __table_args__ = (
        CheckConstraint(_in("status", LEAD_STATUSES), name="status"),
        CheckConstraint(_in("source", LEAD_SOURCES), name="source"),
        CheckConstraint("status <> 'disqualified' OR disqualify_reason IS NOT NULL", name="disqualify_reason"),
        CheckConstraint("email IS NULL OR " + _normalised("email"), name="email_normalised"),
        Index("ix_leads_created", "organization_id", "created_at"),
        Index("ix_leads_email", "organization_id", "email"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(ADDRESS_LENGTH))
    phone: Mapped[str | None] = mapped_column(String(40))
    company: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="new")
    disqualify_reason: Mapped[str | None] = mapped_column(String(200))
    converted_at: Mapped[datetime | None]
    converted_opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunities.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]


OPEN_DEAL = text("status = 'open' AND deleted_at IS NULL")  # the partial index's condition
SCORED = text("sentiment IS NOT NULL AND deleted_at IS NULL")  # ix_activities_scored's


class Opportunity(Synced, Base):
    __tablename__ = "opportunities"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint(_in("status", DEAL_STATUSES), name="status"),
        CheckConstraint("status <> 'lost' OR loss_reason IS NOT NULL", name="lost_has_reason"),
        CheckConstraint("(status = 'open') = (closed_at IS NULL)", name="closed_at_iff_closed"),
        Index("ix_opportunities_account", "organization_id", "account_id", "status"),
        Index("ix_opportunities_owner", "organization_id", "owner_id", "status"),
        Index("uq_opportunities_external_id", "organization_id", "external_id", unique=True),
        # Covering the closed-deal figures (outcomes, won by owner, trends) and the cohort's stage
        # conversion: a year of an organization's deals read from the index alone.
        Index(
            "ix_opportunities_closed",
            "organization_id",
            "closed_at",
            "status",
            "owner_id",
            "amount",
            "deleted_at",
            "created_at",
            "loss_reason",
        ),
        Index(
            "ix_opportunities_created",
            "organization_id",
            "created_at",
            "owner_id",
            "deleted_at",
            "stages_reached",
            "furthest_position",
            "ever_won",
        ),
        # The open deals alone (a seventh of them): the pipeline, the forecast and the alerts.
        Index(
            "ix_opportunities_open",
            "organization_id",
            "owner_id",
            "stage_id",
            "amount",
            "expected_close_date",
            sqlite_where=OPEN_DEAL,
            postgresql_where=OPEN_DEAL,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="RESTRICT"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    amount: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    currency: Mapped[str] = mapped_column(String(3))
    expected_close_date: Mapped[date | None] = mapped_column(Date)
    source: Mapped[str | None] = mapped_column(String(32))
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id", ondelete="RESTRICT"))
    # The deal's id in the CRM it was imported from: a second import of the same file finds it.
    external_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(8), default="open")
    loss_reason: Mapped[str | None] = mapped_column(String(200))
    closed_at: Mapped[datetime | None]
    stage_entered_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]
    # The deal's latest live activity and latest inbound interaction (``services.signals``),
    # kept with every activity write (``services.latest``): what going dark and neglected read.
    last_activity_at: Mapped[datetime | None]
    last_inbound_at: Mapped[datetime | None]
    # What stage conversion reads of the deal's stage changes, kept with every change
    # (``services.deals.stage_entered``): a bit per stage position it ever entered, the furthest
    # position, and whether it was ever won. A cohort's conversion reads one row per deal.
    stages_reached: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    furthest_position: Mapped[int | None] = mapped_column(Integer)
    ever_won: Mapped[bool] = mapped_column(default=False, server_default=false())

    account: Mapped[Account] = relationship()
    contact: Mapped[Contact | None] = relationship()
    owner: Mapped[User] = relationship()
    stage: Mapped[Stage] = relationship()


# A statement's filter for live open deals, the partial index's condition (OPEN_DEAL) with 'open'
# written into the SQL: bound as a parameter, it hides the index from SQLite, which plans before
# it sees the value (and from a generic plan on PostgreSQL).
def live(model: Any) -> ColumnElement[bool]:
    """A record not soft-deleted: the one criterion every list, figure and lookup reads (a
    soft-deleted record never counts, PRODUCT.md)."""
    return model.deleted_at.is_(None)


IS_OPEN_DEAL = (Opportunity.status == literal_column("'open'", String())) & live(Opportunity)


class StageChange(OrgScoped, Base):
    """One move of a deal: between stages, or between statuses (won, lost, reopened)."""

    __tablename__ = "stage_changes"
    __table_args__ = (
        CheckConstraint("from_status IS NULL OR " + _in("from_status", DEAL_STATUSES), name="from_status"),
        CheckConstraint(_in("to_status", DEAL_STATUSES), name="to_status"),
        Index("ix_stage_changes_deal", "opportunity_id", "changed_at"),
        Index("ix_stage_changes_when", "organization_id", "changed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunities.id", ondelete="CASCADE"))
    from_stage_id: Mapped[int | None] = mapped_column(ForeignKey("stages.id", ondelete="RESTRICT"))
    to_stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id", ondelete="RESTRICT"))
    from_status: Mapped[str | None] = mapped_column(String(8))
    to_status: Mapped[str] = mapped_column(String(8))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The deal as it was before the move, so that the rep can take the move back
    # (``services.deals.undo_move``): its amount (winning sets the final one), loss reason,
    # close time and time in its stage. Empty for a deal's first change and older ones.
    from_amount: Mapped[Decimal | None]
    from_loss_reason: Mapped[str | None] = mapped_column(String(200))
    from_closed_at: Mapped[datetime | None]
    from_stage_entered_at: Mapped[datetime | None]


class Activity(Synced, Base):
    __tablename__ = "activities"
    __table_args__ = (
        UniqueConstraint("organization_id", "external_id", name="uq_activities_external_id"),
        CheckConstraint(_in("type", ACTIVITY_TYPES), name="type"),
        CheckConstraint(_in("direction", DIRECTIONS), name="direction"),
        CheckConstraint("outcome IS NULL OR " + _in("outcome", OUTCOMES), name="outcome"),
        CheckConstraint(_in("source", SOURCES), name="source"),
        CheckConstraint("duration_minutes IS NULL OR duration_minutes >= 0", name="duration"),
        CheckConstraint("rating IS NULL OR rating IN (-1, 1)", name="rating"),
        CheckConstraint("sentiment IS NULL OR (sentiment >= -1 AND sentiment <= 1)", name="sentiment"),
        Index("ix_activities_contact", "organization_id", "contact_id", "occurred_at"),
        Index("ix_activities_account", "organization_id", "account_id", "occurred_at"),
        Index("ix_activities_opportunity", "organization_id", "opportunity_id", "occurred_at"),
        Index(
            "ix_activities_owner", "organization_id", "owner_id", "occurred_at", "deleted_at"
        ),  # drawdown reads the index alone
        Index("ix_activities_conversation", "organization_id", "conversation_id"),
        Index("ix_activities_lead", "organization_id", "lead_id", "occurred_at"),
        # A deal's latest scores (deal health) walk its live scored activities alone: most are not.
        Index(
            "ix_activities_scored",
            "organization_id",
            "opportunity_id",
            "occurred_at",
            sqlite_where=SCORED,
            postgresql_where=SCORED,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime]
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str | None] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(String(500))
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunities.id", ondelete="SET NULL"))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    source: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str | None] = mapped_column(String(512))
    # The mail thread a logged email belongs to (Office.js's conversationId, Gmail's threadId):
    # the deal the rep chose for it is offered first for the thread's next mails.
    conversation_id: Mapped[str | None] = mapped_column(String(255))
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    sentiment: Mapped[float | None] = mapped_column(Float)
    # When ``sentiment`` was worked out (``services.sentiment``): NULL for an activity never
    # scored (the backfill's work); set with a NULL score for one that cannot be scored (not
    # English, no text of the customer's).
    sentiment_scored_at: Mapped[datetime | None]
    is_private: Mapped[bool] = mapped_column(Boolean, default=False)
    # Note quality, kept as the note is written (``services.notes``): how many questions the
    # type's checklist asked, and how many of them the note answers.
    checklist_questions: Mapped[int | None] = mapped_column(SmallInteger)
    checklist_answered: Mapped[int | None] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None]

    contact: Mapped[Contact | None] = relationship()
    account: Mapped[Account | None] = relationship()
    opportunity: Mapped[Opportunity | None] = relationship()
    owner: Mapped[User] = relationship()
    participants: Mapped[list[ActivityParticipant]] = relationship(
        back_populates="activity", cascade="all, delete-orphan"
    )


class ActivityParticipant(OrgScoped, Base):
    """Who else was on an email or at a meeting, matched to a contact where one is known."""

    __tablename__ = "activity_participants"
    __table_args__ = (
        CheckConstraint(_normalised("address"), name="address_normalised"),
        CheckConstraint(_in("role", ("from", "to", "cc", "attendee")), name="role"),
        Index("ix_activity_participants_address", "organization_id", "address"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    address: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))
    role: Mapped[str] = mapped_column(String(16))
    activity: Mapped[Activity] = relationship(back_populates="participants")
    contact: Mapped[Contact | None] = relationship()


class RollupCounts:
    """What both grains of the activity rollups count, per owner, type, direction and outcome.
    ``outcome`` is '' where an activity has none, so that the key stays unique on every back end."""

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16), default="")
    count: Mapped[int] = mapped_column(Integer, default=0)
    minutes: Mapped[int] = mapped_column(Integer, default=0)
    # Calls and visits whose note answers none of their checklist (``services.notes``).
    flagged: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ActivityRollup(RollupCounts, OrgScoped, Base):
    """Activities counted per owner, type, direction, outcome and local day (the organization's
    zone), kept in step with every activity write in the same transaction. Activity figures
    read these, so a year's summary costs reps × days, not activities."""

    __tablename__ = "activity_rollups"
    __table_args__ = (
        UniqueConstraint(
            "organization_id", "owner_id", "day", "type", "direction", "outcome", name="uq_activity_rollups_key"
        ),
        Index("ix_activity_rollups_day", "organization_id", "day"),
        CheckConstraint("count >= 0", name="count_not_negative"),
    )

    day: Mapped[date] = mapped_column(Date)


class ActivityDayTotal(OrgScoped, Base):
    """The daily rollups summed per owner and local day, whatever the type: what a rep's rate
    over the last weeks reads (the drawdown), a row per rep and day rather than one per key."""

    __tablename__ = "activity_day_totals"
    __table_args__ = (
        UniqueConstraint("organization_id", "owner_id", "day", name="uq_activity_day_totals_key"),
        CheckConstraint("count >= 0", name="count_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    count: Mapped[int] = mapped_column(Integer, default=0)
    minutes: Mapped[int] = mapped_column(Integer, default=0)
    flagged: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class WeekdayCounts:
    """A coarse rollup's count by local weekday, so that the weekday pattern reads it too."""

    on_mon: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    on_tue: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    on_wed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    on_thu: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    on_fri: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    on_sat: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    on_sun: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ActivityMonthRollup(RollupCounts, WeekdayCounts, OrgScoped, Base):
    """The daily rollups summed by local month (``month`` is its first day), kept in step with
    them: a year's figures read twelve months' rows, not 365 days'."""

    __tablename__ = "activity_month_rollups"
    __table_args__ = (
        UniqueConstraint(
            "organization_id", "owner_id", "month", "type", "direction", "outcome", name="uq_activity_month_rollups_key"
        ),
        Index("ix_activity_month_rollups_month", "organization_id", "month"),
        CheckConstraint("count >= 0", name="count_not_negative"),
    )

    month: Mapped[date] = mapped_column(Date)


class FiscalMonthCounts:
    """A fiscal year's count by month (its first to its twelfth), so that a span of months
    across the organization (the trends) reads one row per rep and type and year."""

    month_01: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    month_02: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    month_03: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    month_04: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    month_05: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    month_06: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    month_07: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    month_08: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    month_09: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    month_10: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    month_11: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    month_12: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ActivityYearRollup(FiscalMonthCounts, WeekdayCounts, OrgScoped, Base):
    """The same counts by the organization's fiscal year (``year`` is its first day) and by rep
    and type only, with the attempts and contacts among them (``services.signals``) counted
    as they are written: a fiscal year's activity summary reads one row per rep and type. A
    year to date reads its year less the days still to come (``services.reports.activity``),
    which hold next to nothing. Rebuilt with the other grains when the organization's fiscal
    year start or time zone changes."""

    __tablename__ = "activity_year_rollups"
    __table_args__ = (
        UniqueConstraint("organization_id", "owner_id", "year", "type", name="uq_activity_year_rollups_key"),
        Index("ix_activity_year_rollups_year", "organization_id", "year"),
        CheckConstraint("count >= 0", name="count_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    year: Mapped[date] = mapped_column(Date)
    type: Mapped[str] = mapped_column(String(16))
    count: Mapped[int] = mapped_column(Integer, default=0)
    minutes: Mapped[int] = mapped_column(Integer, default=0)
    flagged: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # outbound calls and emails
    contacts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # inbound interactions


WEEKDAY_COLUMNS = (
    "on_mon",
    "on_tue",
    "on_wed",
    "on_thu",
    "on_fri",
    "on_sat",
    "on_sun",
)  # Monday first, as date.weekday()
MONTH_COLUMNS = tuple(f"month_{n:02d}" for n in range(1, 13))  # a fiscal year's months, its first first


class FollowUp(Synced, Base):
    __tablename__ = "follow_ups"
    __table_args__ = (
        Index("ix_follow_ups_owner_due", "organization_id", "owner_id", "due_at"),
        Index("ix_follow_ups_contact", "organization_id", "contact_id"),
        Index("ix_follow_ups_opportunity", "organization_id", "opportunity_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    due_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    reminder_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]  # when its reminder was sent (``services.reminders``)
    # The zone its times were typed in (the rep's mailbox's, from the pane): its reminder says them so.
    time_zone: Mapped[str | None] = mapped_column(String(64))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunities.id", ondelete="SET NULL"))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]

    owner: Mapped[User] = relationship()


class Quota(Synced, Base):
    __tablename__ = "quotas"
    __table_args__ = (
        CheckConstraint("(user_id IS NULL) <> (team_id IS NULL)", name="user_or_team"),
        CheckConstraint(_in("period", QUOTA_PERIODS), name="period"),
        CheckConstraint(_in("metric", QUOTA_METRICS), name="metric"),
        CheckConstraint("(metric = 'activities') = (activity_type IS NOT NULL)", name="activity_type"),
        CheckConstraint("target >= 0", name="target_not_negative"),
        Index("ix_quotas_period", "organization_id", "period_start"),
        # A team's revenue quotas among the reps' many activity quotas.
        Index("ix_quotas_metric", "organization_id", "metric", "period_start"),
        # A team's or a rep's targets: their own quotas only, not the organization's year.
        Index("ix_quotas_user", "organization_id", "user_id", "period_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(8))
    period_start: Mapped[date] = mapped_column(Date)
    metric: Mapped[str] = mapped_column(String(16))
    activity_type: Mapped[str | None] = mapped_column(String(16))
    target: Mapped[Decimal] = mapped_column()


class NoteChecklist(OrgScoped, Base):
    __tablename__ = "note_checklists"
    __table_args__ = (UniqueConstraint("organization_id", "activity_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_type: Mapped[str] = mapped_column(String(16))
    questions: Mapped[list[str]] = mapped_column(JSON, default=list)


class BlockEntry(OrgScoped, Base):
    """An address or a whole domain whose mail is never logged (``services.privacy``): the
    organization's (no owner, set by admins) or one rep's own."""

    __tablename__ = "block_entries"
    __table_args__ = (Index("ix_block_entries_value", "organization_id", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # address | domain
    value: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(OrgScoped, Base):
    """Append-only: who changed what, when, before and after."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_record", "organization_id", "record_type", "record_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(32))
    record_type: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[int] = mapped_column(Integer)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ImportRun(OrgScoped, Base):
    """One import of a file (``services.setup.importing``): its rows, mapping and progress. The
    file is kept in the store until the import is done, so the worker resumes after a restart."""

    __tablename__ = "import_runs"
    __table_args__ = (Index("ix_import_runs_org", "organization_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    message: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The worker's last sign of life on it: a run whose worker stopped is taken up again after a while.
    beat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    undone_at: Mapped[datetime | None]


class ImportChange(OrgScoped, Base):
    """What an import's chunk made (``made``: the ids of one kind), or a record it changed and
    what it was before (``before``): what undoing the import takes back and puts back."""

    __tablename__ = "import_changes"
    __table_args__ = (Index("ix_import_changes_run", "import_id", "record_type"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("import_runs.id", ondelete="CASCADE"))
    record_type: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[int | None] = mapped_column(BigInteger)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    made: Mapped[list[int] | None] = mapped_column(JSON)


class ImportMapping(OrgScoped, Base):
    """A column mapping saved for next time: a file whose headers match is mapped by it."""

    __tablename__ = "import_mappings"
    __table_args__ = (UniqueConstraint("organization_id", "kind", "headers_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    headers_key: Mapped[str] = mapped_column(String(64))  # SHA-256 of the file's headers
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class HandoffUse(Base):
    """A used "Open full panel" link (its random id): each link signs in once."""

    __tablename__ = "handoff_uses"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    used_at: Mapped[datetime] = mapped_column(default=utcnow)


class SendMark(OrgScoped, Base):
    """A draft a rep marked "Log when sent" in Gmail (``services.mail.send_marks``): Gmail has
    no send hook, so the sent mail is logged when the rep next opens it, as Outlook's fallback
    does. The draft is known by its recipients only (the compose event carries no id)."""

    __tablename__ = "send_marks"
    __table_args__ = (Index("ix_send_marks_user", "organization_id", "user_id", "used_at", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    recipients: Mapped[str] = mapped_column(String(2000))  # the external recipients, sorted, comma-separated
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activities.id", ondelete="SET NULL"))


class LexiconWord(OrgScoped, Base):
    """A word whose valence the organization's ratings moved (``services.lexicon``): the shift
    added to VADER's own valence, and the evidence behind it. A word short of evidence is kept
    with a shift of 0, so that an admin sees what is building up."""

    __tablename__ = "lexicon_words"
    __table_args__ = (UniqueConstraint("organization_id", "word"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    word: Mapped[str] = mapped_column(String(40))
    shift: Mapped[float] = mapped_column(Float, default=0.0)
    weight: Mapped[float] = mapped_column(Float, default=0.0)  # the decayed evidence, signed: + warmer, - cooler
    activities: Mapped[int] = mapped_column(Integer, default=0)  # distinct activities behind it
    raters: Mapped[int] = mapped_column(Integer, default=0)  # distinct reps behind it
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class LexiconEvidence(OrgScoped, Base):
    """One word of one activity rated against its score: the rating's direction, who rated it
    and when. An activity holds one rating, so it gives each word one piece of evidence."""

    __tablename__ = "lexicon_evidence"
    __table_args__ = (
        UniqueConstraint("activity_id", "word"),
        Index("ix_lexicon_evidence_word", "organization_id", "word"),
        CheckConstraint("direction IN (-1, 1)", name="direction"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    rater_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    word: Mapped[str] = mapped_column(String(40))
    direction: Mapped[int] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DealHealth(OrgScoped, Base):
    """An open deal's health on one local day (``services.health``), kept by the daily job: what
    "whose health fell most in the last 14 days" compares."""

    __tablename__ = "deal_health"
    __table_args__ = (
        UniqueConstraint("opportunity_id", "day"),
        Index("ix_deal_health_day", "organization_id", "day", "change"),
        CheckConstraint("health BETWEEN 0 AND 100", name="health"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunities.id", ondelete="CASCADE"))
    day: Mapped[date]
    health: Mapped[int] = mapped_column(SmallInteger)
    change: Mapped[int | None] = mapped_column(SmallInteger)  # against the deal's earliest day of the 14 before
    factors: Mapped[list[str]] = mapped_column(JSON, default=list)  # what cost it most, in words


class Tombstone(OrgScoped, Base):
    """A synced record deleted outright (``services.integration.sync``): what a syncing client is told."""

    __tablename__ = "tombstones"
    __table_args__ = (Index("ix_tombstones_sync", "organization_id", "record_type", "sync_seq", "record_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    record_type: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[int] = mapped_column(Integer)
    sync_seq: Mapped[int] = mapped_column(BigInteger)
    deleted_at: Mapped[datetime] = mapped_column(default=utcnow)


# What a sync reads (``services.integration.sync.changes``): a synced table's records of an organization in
# (sequence, id) order.
for _model in (Account, Contact, Lead, Opportunity, Activity, FollowUp, Quota, User):
    Index(f"ix_{_model.__tablename__}_sync", _model.organization_id, _model.sync_seq, _model.id)
del _model


class ApiToken(OrgScoped, Base):
    """A key another system calls the API with (``services.integration.api_tokens``): its organization's,
    with scopes, shown once and kept only as a hash."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        UniqueConstraint("token_hash"),
        CheckConstraint("scopes IN ('read', 'read write')", name="scopes"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the token, hex
    prefix: Mapped[str] = mapped_column(String(16))  # its first characters, to tell tokens apart on the page
    scopes: Mapped[str] = mapped_column(String(16))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    created_by: Mapped[User | None] = relationship()  # its owner: the token acts with their rights, as they are now

    @property
    def can_write(self) -> bool:
        return "write" in self.scopes.split()

    @property
    def owner_may_act(self) -> bool:
        """A token is worth no more than its owner now: an active admin of its organization."""
        owner = self.created_by
        return (
            owner is not None
            and owner.is_active
            and owner.role == "admin"
            and owner.organization_id == self.organization_id
        )


class IdempotencyKey(OrgScoped, Base):
    """A write the API took under an ``Idempotency-Key``: a retry with the same key gets the first
    answer back and writes nothing new."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("token_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(
        String(64)
    )  # method, path and body: the same key for another request is refused
    status: Mapped[int] = mapped_column(SmallInteger)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)  # kept a day (the daily job)


class WebhookEndpoint(OrgScoped, Base):
    """Where an organization's changes are sent (``services.integration.webhooks``): signed with its secret,
    retried with back-off, disabled after too many failures in a row."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(
        String(64)
    )  # signs each event (HMAC-SHA256): kept to sign, shown to the admin once
    events: Mapped[list[str]] = mapped_column(JSON, default=list)  # record types sent; empty: all
    failures: Mapped[int] = mapped_column(Integer, default=0)  # attempts failed in a row
    disabled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(OrgScoped, Base):
    """One change to send to one endpoint: written in the change's own transaction (an outbox),
    so no change is lost between the store and the queue."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class ChangeEvent(OrgScoped, Base):
    """A change, as webhooks announce it, kept ``services.integration.webhooks.EVENTS_KEPT`` for receivers to
    catch up from (``GET /api/v1/events``) after an endpoint was off or a delivery failed; written
    for organizations that have an endpoint, in the change's own transaction."""

    __tablename__ = "change_events"
    __table_args__ = (
        Index("ix_change_events_org", "organization_id", "version", "id"),
        Index("ix_change_events_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    type: Mapped[str] = mapped_column(String(40))  # "contacts.updated"
    record_type: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(BigInteger)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookAttempt(OrgScoped, Base):
    """One try at a delivery, for the admin to see: when, what came back, how long it took."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(SmallInteger)
    error: Mapped[str | None] = mapped_column(String(300))
    milliseconds: Mapped[int] = mapped_column(Integer, default=0)


class LeadSource(OrgScoped, Base):
    """Where leads come in from outside (a web form, a WhatsApp provider, ads): its intake URL
    carries an unguessable key; a source may also require each request signed with its secret
    (``services.integration.intake``). Its leads go round-robin to its team's reps."""

    __tablename__ = "lead_sources"
    __table_args__ = (UniqueConstraint("key"), CheckConstraint(_in("kind", LEAD_SOURCES), name="kind"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    secret: Mapped[str] = mapped_column(String(64))
    signed: Mapped[bool] = mapped_column(Boolean, default=False)  # refuse what is not signed with the secret
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))  # None: every rep
    last_owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )  # the round robin's place
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]
    key_rotated_at: Mapped[datetime | None]


class LeadArrival(OrgScoped, Base):
    """What one post to an intake URL said (``services.integration.intake``): kept on the lead it was matched
    to, for its rep to read. An unauthenticated post never changes the lead itself."""

    __tablename__ = "lead_arrivals"
    __table_args__ = (Index("ix_lead_arrivals_lead", "lead_id", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("lead_sources.id", ondelete="SET NULL"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(ADDRESS_LENGTH))
    phone: Mapped[str | None] = mapped_column(String(40))
    company: Mapped[str | None] = mapped_column(String(200))
    message: Mapped[str | None] = mapped_column(Text)


class MailProvider(StrEnum):
    MICROSOFT = "microsoft"
    GOOGLE = "google"


class MailboxState(StrEnum):
    """Where a connected mailbox's capture stands (``services.capture``)."""

    CONNECTED = "connected"  # consent given, nothing synced yet
    SYNCING = "syncing"  # a worker is reading it now, or its backfill is under way
    CURRENT = "current"  # read up to the provider's latest change
    ERROR = "error"  # stopped: the consent was revoked, the token died, or the provider refuses
    DISCONNECTED = "disconnected"  # the rep or an admin disconnected it; nothing is read


MAIL_PROVIDERS = _values(MailProvider)
CAPTURE_RULES = ("contacts", "domains", "new_contacts")
MAILBOX_STATES = _values(MailboxState)


class MailGrant(OrgScoped, Base):
    """An organization's consent to read its people's mail (``services.capture``): Microsoft
    application permissions granted by a tenant admin, or Google domain-wide delegation to our
    service account. Admins then choose whose mailboxes are captured."""

    __tablename__ = "mail_grants"
    __table_args__ = (
        UniqueConstraint("organization_id", "provider"),
        CheckConstraint(_in("provider", MAIL_PROVIDERS), name="provider"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    # Microsoft: the tenant id the admin consented in. Google: the Workspace's primary domain.
    directory: Mapped[str] = mapped_column(String(DOMAIN_LENGTH))
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)


class Mailbox(OrgScoped, Base):
    """One person's mailbox and calendar, read for automatic capture (``services.capture``).

    ``secret`` is the refresh token of the rep's own consent, encrypted (``services.capture.vault``);
    a mailbox read under the organization's grant has none. The worker that syncs it holds a
    lease (``claimed_by`` until ``claimed_until``): one mailbox is never read by two at once."""

    __tablename__ = "mailboxes"
    __table_args__ = (
        UniqueConstraint("organization_id", "user_id"),
        CheckConstraint(_in("provider", MAIL_PROVIDERS), name="provider"),
        CheckConstraint(_in("state", MAILBOX_STATES), name="state"),
        Index("ix_mailboxes_due", "state", "next_sync_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("mail_grants.id", ondelete="CASCADE"))
    secret: Mapped[str | None] = mapped_column(Text)
    access_secret: Mapped[str | None] = mapped_column(Text)  # the current access token, encrypted
    access_expires_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(16), default=MailboxState.CONNECTED.value)
    problem: Mapped[str | None] = mapped_column(String(500))  # why it stopped, in the rep's words
    problem_at: Mapped[datetime | None]
    connected_at: Mapped[datetime] = mapped_column(default=utcnow)
    connected_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    disconnected_at: Mapped[datetime | None]
    # The backfill: mail since this time is read at first; done once every folder has its cursor.
    backfill_since: Mapped[datetime | None]
    backfill_done_at: Mapped[datetime | None]
    synced_at: Mapped[datetime | None]  # the last pass that read to the provider's latest change
    next_sync_at: Mapped[datetime | None]  # not before (a poll's interval, a Retry-After)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    seen: Mapped[int] = mapped_column(Integer, default=0)  # messages and events read
    captured: Mapped[int] = mapped_column(Integer, default=0)  # activities they made
    behind: Mapped[int | None] = mapped_column(Integer)  # changes known waiting, when the provider says

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    feeds: Mapped[list[MailboxFeed]] = relationship(back_populates="mailbox", cascade="all, delete-orphan")


class MailboxFeed(OrgScoped, Base):
    """Where one folder of a mailbox was read to: Graph's delta link (or the next page of a
    pass under way), Gmail's history id, Calendar's sync token; and its push subscription."""

    __tablename__ = "mailbox_feeds"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "folder"),
        Index("ix_mailbox_feeds_subscription", "subscription_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    folder: Mapped[str] = mapped_column(String(32))  # inbox | sentitems | calendar (Graph); mail | calendar (Google)
    cursor: Mapped[str | None] = mapped_column(Text)  # where the next pass starts
    page: Mapped[str | None] = mapped_column(Text)  # the pass under way: its next page
    subscription_id: Mapped[str | None] = mapped_column(String(200))
    subscription_expires_at: Mapped[datetime | None]
    synced_at: Mapped[datetime | None]

    mailbox: Mapped[Mailbox] = relationship(back_populates="feeds")


class Capture(OrgScoped, Base):
    """An activity capture made, and why (``services.capture.rules``): what the rep and the admin
    read, and what an un-capture takes back."""

    __tablename__ = "captures"
    __table_args__ = (
        UniqueConstraint("activity_id"),
        Index("ix_captures_mailbox", "organization_id", "mailbox_id", "captured_at"),
        Index("ix_captures_event", "mailbox_id", "provider_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    provider_id: Mapped[str | None] = mapped_column(String(400))  # a calendar event's id at its provider
    reason: Mapped[str] = mapped_column(String(300))
    captured_at: Mapped[datetime] = mapped_column(default=utcnow)
    uncaptured_at: Mapped[datetime | None]
    online_link: Mapped[str | None] = mapped_column(String(1000))  # a meeting's join URL (its Teams transcript's key)
    # When the rep said how a captured meeting went (``services.capture.meetings``); until then
    # My day asks, for a held one.
    answered_at: Mapped[datetime | None]


class Transcript(OrgScoped, Base):
    """What was said in a meeting: Teams' transcript read through Graph, or a file the rep
    attached (WebVTT or text). It is the meeting's: private when the meeting is, removed with its
    body by the retention, scrubbed by an erasure."""

    __tablename__ = "transcripts"
    __table_args__ = (UniqueConstraint("activity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))  # teams | upload
    filename: Mapped[str | None] = mapped_column(String(255))
    text: Mapped[str | None] = mapped_column(Text)
    customer_text: Mapped[str | None] = mapped_column(Text)  # the lines of speakers outside the organization
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class DealNotice(OrgScoped, Base):
    """What a deal's owner was told without opening anything (``services.capture.notices``): a
    captured mail brought its health below the organization's line, or it went dark. Shown in
    the owner's My day until seen, mailed once, and listed in the manager's team panel."""

    __tablename__ = "deal_notices"
    __table_args__ = (
        Index("ix_deal_notices_owner", "organization_id", "owner_id", "seen_at"),
        Index("ix_deal_notices_deal", "organization_id", "opportunity_id", "kind", "created_at"),
        Index("ix_deal_notices_unmailed", "mailed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunities.id", ondelete="CASCADE"))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activities.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))  # health | dark
    score_before: Mapped[int | None] = mapped_column(SmallInteger)
    score_after: Mapped[int | None] = mapped_column(SmallInteger)
    message: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime | None]
    mailed_at: Mapped[datetime | None]


# The search's trigram indexes (``services.search_index``), made with the tables.
search_index.install(Base.metadata)
