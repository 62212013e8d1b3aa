"""Everything an organization owns, taken out: a zip of one CSV per object and the same rows as
JSON, for leaving or for a backup (PRODUCT.md: no lock-in).

The CSVs of accounts, contacts, deals, activities and leads carry the columns the importer
recognises (``services.setup.importing``), so the zip imports back into an empty organization
that has the same people and stages: its figures come out the same. Every CSV cell a
spreadsheet would run as a formula is neutralised (``safe_cell``). Rows are read in batches and
written as they are read, so a store of millions of activities exports in constant memory.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

from sqlalchemy import Select, String, case, cast, func, literal, select
from sqlalchemy.orm import Session, aliased

from services.models import (
    Account,
    AccountDomain,
    Activity,
    AuditEvent,
    Capture,
    Contact,
    ContactEmail,
    ContactPhone,
    FollowUp,
    Lead,
    NoteChecklist,
    Opportunity,
    Organization,
    Quota,
    Stage,
    StageChange,
    Transcript,
    Team,
    User,
    live,
)
from services.audit import plain
from services.setup.tables import safe_cell

BATCH = 5_000


def _owner() -> Any:
    return aliased(User)


def _first(column: Any, link: Any, parent: Any) -> Any:
    """The first of a record's values kept in another table (its first domain, e-mail, phone)."""
    return select(func.min(column)).where(link).correlate(parent).scalar_subquery()


def _prefixed(prefix: str, column: Any) -> Any:
    """``prefix`` and the id, as text (``||`` on both back ends; SQLite before 3.44 has no ``concat``)."""
    return literal(prefix, String).concat(cast(column, String))


def _tables(org_id: int) -> dict[str, Select]:
    """Each file's statement: its columns' names are the CSV's headers."""
    owner = _owner()
    domains = _first(AccountDomain.domain, AccountDomain.account_id == Account.id, Account)
    first_email = _first(ContactEmail.address, ContactEmail.contact_id == Contact.id, Contact)
    first_phone = _first(ContactPhone.number, ContactPhone.contact_id == Contact.id, Contact)
    contact_email = _first(ContactEmail.address, ContactEmail.contact_id == Activity.contact_id, Activity)
    deal_account = aliased(Account)
    contact_account = aliased(Account)
    team = aliased(Team)
    return {
        "people": select(
            User.id, User.name, User.email, User.role, team.name.label("team"), User.is_active.label("active")
        )
        .outerjoin(team, team.id == User.team_id)
        .where(User.organization_id == org_id)
        .order_by(User.id),
        "teams": select(Team.id, Team.name).where(Team.organization_id == org_id).order_by(Team.id),
        "stages": select(
            Stage.id,
            Stage.name,
            Stage.position,
            Stage.probability,
            Stage.sla_days,
            Stage.retired_at.label("retired_at"),
        )
        .where(Stage.organization_id == org_id)
        .order_by(Stage.position),
        "accounts": select(
            Account.id,
            Account.name,
            domains.label("domain"),
            Account.city,
            owner.email.label("owner"),
            Account.created_at,
        )
        .outerjoin(owner, owner.id == Account.owner_id)
        .where(Account.organization_id == org_id, live(Account))
        .order_by(Account.id),
        "contacts": select(
            Contact.id,
            first_email.label("email"),
            Contact.name,
            first_phone.label("phone"),
            Contact.title,
            contact_account.name.label("account"),
            owner.email.label("owner"),
        )
        .outerjoin(contact_account, contact_account.id == Contact.account_id)
        .outerjoin(owner, owner.id == Contact.owner_id)
        .where(Contact.organization_id == org_id, live(Contact))
        .order_by(Contact.id),
        "deals": select(
            func.coalesce(Opportunity.external_id, _prefixed("deal-", Opportunity.id)).label("external_id"),
            Opportunity.name,
            deal_account.name.label("account"),
            Opportunity.amount,
            Stage.name.label("stage"),
            Opportunity.status,
            Opportunity.expected_close_date.label("close_date"),
            Opportunity.closed_at,
            owner.email.label("owner"),
            Opportunity.loss_reason,
            Opportunity.created_at,
        )
        .join(deal_account, deal_account.id == Opportunity.account_id)
        .join(Stage, Stage.id == Opportunity.stage_id)
        .join(owner, owner.id == Opportunity.owner_id)
        .where(Opportunity.organization_id == org_id, live(Opportunity))
        .order_by(Opportunity.id),
        "stage_changes": select(
            StageChange.opportunity_id.label("deal_id"),
            StageChange.from_stage_id,
            StageChange.to_stage_id,
            StageChange.from_status,
            StageChange.to_status,
            StageChange.changed_at,
        )
        .where(StageChange.organization_id == org_id)
        .order_by(StageChange.id),
        "activities": select(
            func.coalesce(Activity.external_id, _prefixed("activity-", Activity.id)).label("external_id"),
            case((Activity.external_id.like("<%"), Activity.external_id)).label("message_id"),
            Activity.type,
            Activity.occurred_at.label("date"),
            Activity.direction,
            Activity.subject,
            Activity.body_text.label("notes"),
            Activity.duration_minutes.label("minutes"),
            Activity.outcome,
            contact_email.label("contact_email"),
            func.coalesce(Opportunity.external_id, _prefixed("deal-", Opportunity.id)).label("deal_id"),
            owner.email.label("owner"),
            Activity.is_private.label("private"),
            Activity.source,
            Activity.rating,
        )
        .join(owner, owner.id == Activity.owner_id)
        .outerjoin(Opportunity, Opportunity.id == Activity.opportunity_id)
        .where(Activity.organization_id == org_id, live(Activity))
        .order_by(Activity.id),
        "follow_ups": select(
            FollowUp.id,
            FollowUp.title,
            FollowUp.due_at,
            FollowUp.done_at,
            owner.email.label("owner"),
            FollowUp.contact_id,
            FollowUp.opportunity_id.label("deal_id"),
        )  # fmt: skip
        .join(owner, owner.id == FollowUp.owner_id)
        .where(FollowUp.organization_id == org_id, live(FollowUp))
        .order_by(FollowUp.id),
        "leads": select(
            Lead.email,
            Lead.name,
            Lead.phone,
            Lead.company,
            Lead.source,
            Lead.status,
            owner.email.label("owner"),
            Lead.created_at,
        )  # fmt: skip
        .outerjoin(owner, owner.id == Lead.owner_id)
        .where(Lead.organization_id == org_id, live(Lead))
        .order_by(Lead.id),
        "quotas": select(
            Quota.period,
            Quota.period_start,
            Quota.metric,
            Quota.activity_type,
            Quota.target,
            owner.email.label("rep"),
            team.name.label("team"),
        )  # fmt: skip
        .outerjoin(owner, owner.id == Quota.user_id)
        .outerjoin(team, team.id == Quota.team_id)
        .where(Quota.organization_id == org_id)
        .order_by(Quota.id),
        "note_checklists": select(NoteChecklist.activity_type, NoteChecklist.questions).where(
            NoteChecklist.organization_id == org_id
        ),
        # What automatic capture kept beside the activities: a meeting's transcript, and why a
        # mail or meeting was taken.
        "transcripts": select(
            Transcript.activity_id, Transcript.source, Transcript.filename, Transcript.text, Transcript.created_at
        )
        .join(Activity, Activity.id == Transcript.activity_id)
        .where(Transcript.organization_id == org_id, live(Activity))
        .order_by(Transcript.id),
        "captures": select(Capture.activity_id, Capture.reason, Capture.captured_at, Capture.uncaptured_at)
        .where(Capture.organization_id == org_id)
        .order_by(Capture.id),
    }


def _cell(value: Any) -> Any:
    """A value as the CSV writes it: as JSON keeps it, a yes or a blank for a flag."""
    if isinstance(value, bool):
        return "yes" if value else ""
    return plain(value)


def _rows(session: Session, statement: Select) -> Iterator[Any]:
    yield from session.execute(statement.execution_options(yield_per=BATCH))


def export_organization(session: Session, organization: Organization, out: IO[bytes]) -> dict[str, int]:
    """Write the organization's zip to ``out``; returns the rows per file."""
    counts: dict[str, int] = {}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        settings = {
            "name": organization.name,
            "domains": organization.domains,
            "time_zone": organization.time_zone,
            "fiscal_year_start_month": organization.fiscal_year_start_month,
            "currency": organization.currency,
            "settings": {key: organization.setting(key) for key in Organization.DEFAULT_SETTINGS},
        }
        archive.writestr("organization.json", json.dumps(settings, indent=2, ensure_ascii=False))
        for name, statement in _tables(organization.id).items():
            headers = [column.name for column in statement.selected_columns]
            with archive.open(f"{name}.csv", "w") as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
                writer = csv.writer(text)
                writer.writerow(headers)
                count = 0
                for row in _rows(session, statement):
                    writer.writerow([safe_cell(_cell(value)) for value in row])
                    count += 1
                text.flush()
                text.detach()
            # A zip writes one file at a time: the JSON reads the rows again.
            with archive.open(f"json/{name}.json", "w") as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8")
                text.write("[")
                for n, row in enumerate(_rows(session, statement)):
                    text.write(
                        ("," if n else "") + "\n" + json.dumps(dict(zip(headers, row_json(row))), ensure_ascii=False)
                    )
                text.write("\n]\n")
                text.flush()
                text.detach()
            counts[name] = count
    return counts


def row_json(row: Any) -> list[Any]:
    """A row's values as JSON keeps them: numbers as text (exact), times in ISO 8601, booleans as booleans."""
    return [
        value.isoformat()
        if isinstance(value, (datetime, date))
        else str(value)
        if isinstance(value, Decimal)
        else value
        for value in row
    ]


def audit_export(session: Session, actor: User | None, organization: Organization, counts: dict[str, int]) -> None:
    session.add(
        AuditEvent(
            organization_id=organization.id,
            actor_id=actor.id if actor is not None else None,
            action="export",
            record_type="organizations",
            record_id=organization.id,
            after={"rows": counts},
        )
    )
