"""Records as another system changes them through the API (``addin.routes.api``): leads and
quotas made, any synced record changed field by field against the version it was read at, or
deleted (softly: it stays, marked, so that syncing clients are told and past figures stand).

The pane's own ways in (logging, a stage move, a follow-up done) live in their services; these
are the generic ones. Every change is checked against the actor's role and audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from marshmallow import fields, validate
from sqlalchemy.orm import Session

from services.access import get_scoped, require_edit, require_role
from services.mail.activities import change_counted, delete_counted
from services.audit import record_event, snapshot
from services.errors import Conflict, DomainError
from services.models import (
    ACTIVITY_TYPES,
    LEAD_SOURCES,
    LEAD_STATUSES,
    OUTCOMES,
    QUOTA_METRICS,
    QUOTA_PERIODS,
    Account,
    Activity,
    Contact,
    FollowUp,
    Lead,
    Opportunity,
    Quota,
    Team,
    User,
)
from services.schemas import Address, Day, InputSchema, Money, WhenField, _id, load
from services.types import utcnow


class LeadSchema(InputSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    email = Address()
    phone = fields.String(validate=validate.Length(max=40))
    company = fields.String(validate=validate.Length(max=200))
    source = fields.String(
        load_default="other", validate=validate.OneOf(LEAD_SOURCES, error="Choose a lead source from the list.")
    )
    owner_id = _id()


class QuotaSchema(InputSchema):
    user_id = _id()
    team_id = _id()
    period = fields.String(required=True, validate=validate.OneOf(QUOTA_PERIODS))
    period_start = Day(required=True)
    metric = fields.String(required=True, validate=validate.OneOf(QUOTA_METRICS))
    activity_type = fields.String(validate=validate.OneOf(ACTIVITY_TYPES))
    target = Money(required=True)


# What an update may change, per type: a partial schema of the fields another system owns.
class AccountChanges(InputSchema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    city = fields.String(validate=validate.Length(max=120))


class ContactChanges(InputSchema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    title = fields.String(validate=validate.Length(max=200))
    account_id = _id()


class LeadChanges(InputSchema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    email = Address()
    phone = fields.String(validate=validate.Length(max=40))
    company = fields.String(validate=validate.Length(max=200))
    status = fields.String(validate=validate.OneOf(LEAD_STATUSES))
    disqualify_reason = fields.String(validate=validate.Length(max=200))


class DealChanges(InputSchema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    amount = Money()
    expected_close_date = Day()
    contact_id = _id()
    source = fields.String(validate=validate.Length(max=32))


class ActivityChanges(InputSchema):
    subject = fields.String(validate=validate.Length(max=500))
    outcome = fields.String(validate=validate.OneOf(OUTCOMES))
    duration_minutes = fields.Integer(validate=validate.Range(min=0, max=24 * 60))


class FollowUpChanges(InputSchema):
    title = fields.String(validate=validate.Length(min=1, max=300))
    due_at = WhenField()
    done = fields.Boolean()


class QuotaChanges(InputSchema):
    target = Money()


CHANGES: dict[type, type[InputSchema]] = {
    Account: AccountChanges,
    Contact: ContactChanges,
    Lead: LeadChanges,
    Opportunity: DealChanges,
    Activity: ActivityChanges,
    FollowUp: FollowUpChanges,
    Quota: QuotaChanges,
}
LINKS = {"account_id": (Account, "account"), "contact_id": (Contact, "contact")}


def _owner(record: Any) -> User | None:
    return getattr(record, "owner", None) if hasattr(record, "owner_id") else None


def check_version(record: Any, version: int | None) -> None:
    if version is None:
        raise DomainError(
            "Say which version of the record the change is based on.",
            {"version": ["Required."]},
            code="version_required",
        )
    if version != record.sync_seq:
        raise Conflict(record)


def update_record(
    session: Session,
    actor: User,
    model: type,
    record_id: int,
    data: Mapping[str, Any],
    version: int | None,
    now: datetime | None = None,
) -> Any:
    """Change these fields of a record, if it is still at ``version``; else ``Conflict`` with the
    record as it is (nothing written)."""
    schema = CHANGES.get(model)
    if schema is None:
        raise DomainError("These records are not changed through the API.", code="read_only")
    values = load(schema, data, locale=actor.organization.setting("locale"))
    record = get_scoped(session, actor, model, record_id, model.__tablename__.rstrip("s"), for_update=True)
    if model is Quota:
        require_role(actor, "admin", "manager")
    elif (owner := _owner(record)) is not None:
        require_edit(actor, owner)
    check_version(record, version)
    if not values:
        return record
    for key, (link, what) in LINKS.items():
        if key in values:
            get_scoped(session, actor, link, values[key], what)
    if "done" in values:  # a follow-up done (now), or not done after all
        values["done_at"] = (now or utcnow()) if values.pop("done") else None
    fields_changed = tuple(values)
    before = snapshot(record, fields_changed)
    values = {
        key: value.strip() if isinstance(value, str) and key == "name" else value for key, value in values.items()
    }
    if model is Activity:  # counted: through the activities' one write path (rollups, latest times)
        change_counted(session, actor.organization, record, values)
    else:
        for key, value in values.items():
            setattr(record, key, value)
        session.flush()
    record_event(session, actor, "update", record, before=before, after=snapshot(record, fields_changed))
    return record


def delete_record(
    session: Session, actor: User, model: type, record_id: int, version: int | None, now: datetime | None = None
) -> Any:
    """Delete a record softly (it stays, marked deleted), if it is still at ``version``."""
    if not hasattr(model, "deleted_at"):
        raise DomainError("These records are not deleted through the API.", code="read_only")
    record = get_scoped(session, actor, model, record_id, model.__tablename__.rstrip("s"), for_update=True)
    if (owner := _owner(record)) is not None:
        require_edit(actor, owner)
    check_version(record, version)
    if model is Activity:  # counted: through the activities' one write path (rollups, latest times)
        delete_counted(session, actor.organization, record, now or utcnow())
    else:
        record.deleted_at = now or utcnow()
        session.flush()
    record_event(
        session,
        actor,
        "delete",
        record,
        before={"deleted_at": None},
        after={"deleted_at": record.deleted_at.isoformat()},
    )
    return record


def create_lead(session: Session, actor: User, data: Mapping[str, Any], now: datetime | None = None) -> Lead:
    values = load(LeadSchema, data)
    owner = get_scoped(session, actor, User, values["owner_id"], "rep") if values.get("owner_id") else actor
    lead = Lead(
        organization_id=actor.organization_id,
        name=values["name"].strip(),
        email=values.get("email"),
        phone=values.get("phone"),
        company=values.get("company"),
        source=values["source"],
        owner_id=owner.id,
        status="new",
        created_at=now or utcnow(),
    )
    session.add(lead)
    session.flush()
    record_event(
        session,
        actor,
        "create",
        lead,
        after=snapshot(lead, ("name", "email", "phone", "company", "source", "owner_id")),
    )
    return lead


def create_quota(session: Session, actor: User, data: Mapping[str, Any]) -> Quota:
    require_role(actor, "admin", "manager")
    values = load(QuotaSchema, data, locale=actor.organization.setting("locale"))
    if bool(values.get("user_id")) == bool(values.get("team_id")):
        raise DomainError(
            "A quota is a rep's or a team's: give one of user_id and team_id.",
            {"user_id": ["One of user_id, team_id."]},
        )
    if values.get("user_id"):
        get_scoped(session, actor, User, values["user_id"], "rep")
    else:
        get_scoped(session, actor, Team, values["team_id"], "team")
    if (values["metric"] == "activities") != bool(values.get("activity_type")):
        raise DomainError(
            "An activities quota names its activity type; the others do not.",
            {"activity_type": ["Only for activities."]},
        )
    quota = Quota(organization_id=actor.organization_id, **values)
    session.add(quota)
    session.flush()
    record_event(session, actor, "create", quota, after=snapshot(quota, tuple(values)))
    return quota
