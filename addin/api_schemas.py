"""What the API answers, as marshmallow schemas: each synced record as other systems read it,
a page of a sync, an error. The requests are validated by the services' own schemas
(``services.schemas``, ``services.integration.records``): the pane's, the cards' and the API's input obey
one rule each. The OpenAPI document is generated from both (``addin.routes.api``)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields


class Record(Schema):
    id = fields.Integer(required=True)
    version = fields.Integer(
        required=True, attribute="sync_seq", metadata={"description": "Send it back with a change (If-Match)."}
    )


class Deletable(Record):
    created_at = fields.DateTime(allow_none=True)
    deleted_at = fields.DateTime(allow_none=True, metadata={"description": "Set once the record is deleted."})


class AccountOut(Deletable):
    name = fields.String()
    parent_id = fields.Integer(allow_none=True)
    owner_id = fields.Integer()
    city = fields.String(allow_none=True)
    domains = fields.Method("_domains")

    def _domains(self, account: Any) -> list[str]:
        return [d.domain for d in account.domains]


class ContactOut(Deletable):
    name = fields.String()
    title = fields.String(allow_none=True)
    account_id = fields.Integer(allow_none=True)
    owner_id = fields.Integer()
    emails = fields.Method("_emails")
    phones = fields.Method("_phones")

    def _emails(self, contact: Any) -> list[str]:
        return [e.address for e in contact.emails]

    def _phones(self, contact: Any) -> list[str]:
        return [p.number for p in contact.phones]


class LeadOut(Deletable):
    name = fields.String()
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    company = fields.String(allow_none=True)
    source = fields.String()
    owner_id = fields.Integer(allow_none=True)
    status = fields.String()
    disqualify_reason = fields.String(allow_none=True)
    converted_at = fields.DateTime(allow_none=True)
    converted_opportunity_id = fields.Integer(allow_none=True)


class OpportunityOut(Deletable):
    name = fields.String()
    account_id = fields.Integer()
    contact_id = fields.Integer(allow_none=True)
    owner_id = fields.Integer()
    amount = fields.Decimal(as_string=True, metadata={"type": "string", "format": "decimal", "example": "25000.00"})
    currency = fields.String()
    expected_close_date = fields.Date(allow_none=True)
    source = fields.String(allow_none=True)
    stage_id = fields.Integer()
    status = fields.String()
    loss_reason = fields.String(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    stage_entered_at = fields.DateTime(allow_none=True)


class ActivityOut(Deletable):
    type = fields.String()
    direction = fields.String()
    occurred_at = fields.DateTime()
    duration_minutes = fields.Integer(allow_none=True)
    outcome = fields.String(allow_none=True)
    subject = fields.Method("_subject", metadata={"description": "Null for a private activity: its owner's alone."})
    body_text = fields.Method("_body", metadata={"description": "Null for a private activity: its owner's alone."})
    contact_id = fields.Integer(allow_none=True)
    account_id = fields.Integer(allow_none=True)
    opportunity_id = fields.Integer(allow_none=True)
    lead_id = fields.Integer(allow_none=True)
    owner_id = fields.Integer()
    source = fields.String()
    external_id = fields.String(allow_none=True)
    rating = fields.Integer(allow_none=True)
    sentiment = fields.Float(allow_none=True)
    is_private = fields.Boolean()
    updated_at = fields.DateTime(allow_none=True)

    def _subject(self, activity: Any) -> str | None:
        return None if activity.is_private else activity.subject

    def _body(self, activity: Any) -> str | None:
        return None if activity.is_private else activity.body_text


class FollowUpOut(Deletable):
    title = fields.String()
    due_at = fields.DateTime()
    done_at = fields.DateTime(allow_none=True)
    reminder_at = fields.DateTime(allow_none=True)
    owner_id = fields.Integer()
    contact_id = fields.Integer(allow_none=True)
    account_id = fields.Integer(allow_none=True)
    opportunity_id = fields.Integer(allow_none=True)
    lead_id = fields.Integer(allow_none=True)


class QuotaOut(Record):
    user_id = fields.Integer(allow_none=True)
    team_id = fields.Integer(allow_none=True)
    period = fields.String()
    period_start = fields.Date()
    metric = fields.String()
    activity_type = fields.String(allow_none=True)
    target = fields.Decimal(as_string=True, metadata={"type": "string", "format": "decimal", "example": "80.00"})


class UserOut(Record):
    name = fields.String()
    email = fields.String()
    role = fields.String()
    team_id = fields.Integer(allow_none=True)
    is_active = fields.Boolean()
    created_at = fields.DateTime(allow_none=True)


OUT: dict[str, type[Schema]] = {
    "accounts": AccountOut,
    "contacts": ContactOut,
    "leads": LeadOut,
    "opportunities": OpportunityOut,
    "activities": ActivityOut,
    "follow_ups": FollowUpOut,
    "quotas": QuotaOut,
    "users": UserOut,
}


class Gone(Schema):
    id = fields.Integer(required=True, attribute="record_id")
    version = fields.Integer(required=True, attribute="sync_seq")
    deleted_at = fields.DateTime()


def page_schema(record_type: str) -> type[Schema]:
    """A page of a sync of this type: the records changed (deleted ones with ``deleted_at``),
    those deleted outright, and the cursor to pass back."""
    return Schema.from_dict(
        {
            "data": fields.List(fields.Nested(OUT[record_type]), required=True),
            "deleted": fields.List(
                fields.Nested(Gone), required=True, metadata={"description": "Records deleted outright (erased)."}
            ),
            "cursor": fields.String(
                required=True, metadata={"description": "Pass it back as ?cursor= for what changed after."}
            ),
            "has_more": fields.Boolean(required=True),
        },
        name=f"{record_type.title().replace('_', '')}Page",
    )


class EventData(Schema):
    record_type = fields.String(required=True)
    id = fields.Integer(required=True)
    version = fields.Integer(required=True)
    deleted = fields.Boolean(required=True)


class EventOut(Schema):
    """A change, as a webhook announces it."""

    id = fields.String(required=True, metadata={"description": "evt_<number>"})
    type = fields.String(required=True, metadata={"description": "<record type>.<created|updated|deleted>"})
    created_at = fields.DateTime(required=True)
    data = fields.Nested(EventData, required=True)


class EventPage(Schema):
    data = fields.List(fields.Nested(EventOut), required=True)
    cursor = fields.String(required=True, metadata={"description": "Pass it back as ?cursor= for the events after."})
    has_more = fields.Boolean(required=True)


class ErrorOut(Schema):
    code = fields.String(required=True, metadata={"description": "Stable: what a client branches on."})
    message = fields.String(required=True)
    field = fields.String(allow_none=True, metadata={"description": "The field at fault, when one is."})
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))
    current = fields.Dict(metadata={"description": "With version_conflict: the record as it is now."})


def fast_dump(schema_class: type[Schema]) -> Any:
    """The schema's dump, each field serialized by its own ``_serialize``, without the general
    attribute lookup around it (two thirds of a dump's time, a page of 1,000 records at a time).
    Only for the flat record schemas above: every field an attribute of the record, or a method
    of the schema; a test holds it equal to ``dump``."""
    schema = schema_class()
    plan = [(field.data_key or name, field.attribute or name, field) for name, field in schema.dump_fields.items()]
    assert not any(isinstance(field, (fields.Nested, fields.List)) for _, _, field in plan), schema_class

    values = [(key, attr, field._serialize) for key, attr, field in plan if not isinstance(field, fields.Method)]
    methods = [(key, attr, field._serialize) for key, attr, field in plan if isinstance(field, fields.Method)]

    def dump(record: Any) -> dict[str, Any]:
        out = {key: serialize(getattr(record, attr), attr, record) for key, attr, serialize in values}
        for key, attr, serialize in methods:
            out[key] = serialize(None, attr, record)
        return out

    return dump


DUMP = {name: fast_dump(schema) for name, schema in OUT.items()}
GONE = fast_dump(Gone)
