"""Input schemas, in one place: the pane's forms, the Gmail cards and the sync API load
every write through these, so a rule about a field is written once.

``load(Schema, data)`` returns clean data or raises ``DomainError`` with the errors per field;
``load(Schema, data, locale=...)`` reads amounts as the organization's locale writes them.
Form posts carry extra fields (the CSRF token, htmx's values), so unknown keys are dropped.
Empty strings from HTML forms, and ``None`` from internal callers, mean "not given".
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from datetime import date, datetime
from typing import Any, Mapping

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate, validates_schema

from services.errors import DomainError
from services.models import ACTIVITY_TYPES, ADDRESS_LENGTH, DIRECTIONS, OUTCOMES, OUTCOMES_OF, SOURCES
from services.numbers import DEFAULT_LOCALE, AmountError, parse_amount
from services.mail.text import is_valid_address, normalise_address

MAX_AMOUNT = 10**12  # fits Numeric(14, 2)
# Ids are PostgreSQL integers: a larger number names no record, and must not reach the driver.
MAX_ID = 2**31 - 1
# The dates anyone means in a CRM. Outside them a date is a typo or a probe, and near the ends
# of Python's calendar a time-zone shift overflows; so both ends are refused at input.
EARLIEST = date(1900, 1, 1)
LATEST = date(2200, 1, 1)  # exclusive
DATE_RANGE_MESSAGE = f"Enter a date between {EARLIEST.year} and {LATEST.year - 1}."
_ID = re.compile(r"[0-9]{1,10}")


def parse_id(value: object) -> int | None:
    """A record id from a URL or a form, or None: ASCII digits only (``"²".isdigit()`` is true,
    ``int("²")`` fails), within the store's integer range."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _ID.fullmatch(value):
        number = int(value)
    else:
        return None
    return number if 1 <= number <= MAX_ID else None


def in_date_range(day: date) -> bool:
    return EARLIEST <= day < LATEST


def refuse_nul(value: Any) -> None:
    """PostgreSQL text cannot hold a NUL character; no field of ours means one."""
    if isinstance(value, str) and "\x00" in value:
        raise ValidationError("Remove the NUL character from this field.")
    if isinstance(value, (list, tuple)):
        for item in value:
            refuse_nul(item)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            refuse_nul(key)
            refuse_nul(item)


class Address(fields.String):
    """An e-mail address, stored lower-case and trimmed."""

    default_error_messages = {
        "invalid_address": "Enter a valid e-mail address.",
        "too_long": f"An e-mail address has at most {ADDRESS_LENGTH} characters.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        address = normalise_address(super()._deserialize(value, attr, data, **kwargs))
        if len(address) > ADDRESS_LENGTH:
            raise self.make_error("too_long")
        if not is_valid_address(address):
            raise self.make_error("invalid_address")
        return address


# The locale amounts are read in, for the ``load`` under way (marshmallow 4 has no schema context).
_LOCALE: ContextVar[str] = ContextVar("amount_locale", default=DEFAULT_LOCALE)


class Money(fields.Decimal):
    """An amount: a number (the API's JSON), or text as people type it in the organization's
    locale ("95,000", "$95,000", "95 000"; "12 500,50" in French), ``services.numbers``."""

    def __init__(self, **kwargs: Any) -> None:
        # The OpenAPI document says a number (text as typed is taken too), with its bounds as numbers.
        metadata = {"minimum": 0, "maximum": MAX_AMOUNT, **kwargs.pop("metadata", {})}
        super().__init__(
            places=2,
            validate=validate.Range(min=0, max=MAX_AMOUNT, error="Enter an amount between 0 and 1,000,000,000,000."),
            metadata=metadata,
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if isinstance(value, str):
            try:
                value = str(parse_amount(value, _LOCALE.get()))
            except AmountError as error:
                raise ValidationError(str(error)) from None
        return super()._deserialize(value, attr, data, **kwargs)


class WhenField(fields.DateTime):
    """An ISO timestamp; a naive one (an HTML ``datetime-local``) is in the organization's zone.

    The service attaches the zone, because only it knows the organization.
    """

    default_error_messages = {"invalid": "Enter a date and time.", "out_of_range": DATE_RANGE_MESSAGE}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> datetime:
        when = super()._deserialize(value, attr, data, **kwargs)
        if not in_date_range(when.date()):
            raise self.make_error("out_of_range")
        return when


class Day(fields.Date):
    """A calendar date, within the range anyone means."""

    default_error_messages = {"invalid": "Enter a date.", "out_of_range": DATE_RANGE_MESSAGE}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> date:
        day = super()._deserialize(value, attr, data, **kwargs)
        if not in_date_range(day):
            raise self.make_error("out_of_range")
        return day


class InputSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    @pre_load
    def blanks_are_missing(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, Mapping):
            refuse_nul(_as_dict(data))
            items = _as_dict(data).items()
            return {
                key: value
                for key, value in items
                if value is not None and not (isinstance(value, str) and value.strip() == "")
            }
        return data


def _id(**kwargs: Any) -> fields.Integer:
    return fields.Integer(
        strict=False,
        validate=validate.Range(min=1, max=MAX_ID, error="Choose a valid record."),
        error_messages={"invalid": "Choose a valid record."},
        **kwargs,
    )


class ContactSchema(InputSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    email = Address(required=True)
    title = fields.String(validate=validate.Length(max=200))
    phone = fields.String(validate=validate.Length(max=40))
    account_id = _id()


class AccountSchema(InputSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    domain = fields.String(validate=validate.Length(max=253))
    parent_id = _id()


class DealSchema(InputSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    account_id = _id(required=True)
    contact_id = _id()
    amount = Money(load_default=0, metadata={"default": 0})  # the document's default a number, as the type says
    stage_id = _id(required=True)
    expected_close_date = Day()
    source = fields.String(validate=validate.Length(max=32))


class NewFromSenderSchema(InputSchema):
    """The unknown-sender form: a contact, maybe an account, maybe a deal, in one go."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    email = Address(required=True)
    title = fields.String(validate=validate.Length(max=200))
    company = fields.String(validate=validate.Length(max=200))
    deal_name = fields.String(validate=validate.Length(max=200))
    amount = Money()
    stage_id = _id()

    @validates_schema
    def deal_needs_a_stage(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("deal_name") and not data.get("stage_id"):
            raise ValidationError("Choose a stage for the deal.", "stage_id")


class ParticipantSchema(InputSchema):
    address = Address(required=True)
    role = fields.String(load_default="to", validate=validate.OneOf(("from", "to", "cc", "attendee")))
    name = fields.String(validate=validate.Length(max=200))


class ActivitySchema(InputSchema):
    type = fields.String(required=True, validate=validate.OneOf(ACTIVITY_TYPES, error="Choose an activity type."))
    direction = fields.String(validate=validate.OneOf(DIRECTIONS))
    occurred_at = WhenField()
    duration_minutes = fields.Integer(
        validate=validate.Range(min=0, max=24 * 60, error="Duration is between 0 and 1,440 minutes."),
        error_messages={"invalid": "Enter the duration in whole minutes, like 30."},
    )
    outcome = fields.String(validate=validate.OneOf(OUTCOMES, error="Choose an outcome from the list."))
    subject = fields.String(validate=validate.Length(max=500))
    body_html = fields.String(validate=validate.Length(max=1_000_000))
    body_text = fields.String(validate=validate.Length(max=200_000))
    external_id = fields.String(validate=validate.Length(min=1, max=512))
    contact_id = _id()
    account_id = _id()
    opportunity_id = _id()
    lead_id = _id()
    source = fields.String(load_default="web", validate=validate.OneOf(SOURCES))
    is_private = fields.Boolean(load_default=False)
    participants = fields.List(fields.Nested(ParticipantSchema), load_default=list)
    answers = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)

    @validates_schema
    def outcome_of_its_type(self, data: dict[str, Any], **kwargs: Any) -> None:
        """A call is answered or not; a meeting or visit held or not (``OUTCOMES_OF``)."""
        allowed = OUTCOMES_OF.get(data.get("type", ""))
        if data.get("outcome") and allowed is not None and data["outcome"] not in allowed:
            kind = data["type"]
            words = ", ".join(o.replace("_", " ") for o in allowed)
            raise ValidationError(f"A {kind}'s outcome is one of: {words}.", "outcome")


class EmailItemSchema(InputSchema):
    """A mail item as the pane reads it (Office.js or Gmail) and hands it to ``log_email``.

    Its recipients are the mail's own headers, not the rep's typing: one that is no address
    ("To: XX", "undisclosed-recipients:;") is left out, and the mail is logged with the rest."""

    internet_message_id = fields.String(required=True, validate=validate.Length(min=1, max=512))
    subject = fields.String(load_default="", validate=validate.Length(max=500))
    from_address = Address(required=True)
    from_name = fields.String(validate=validate.Length(max=200))
    to = fields.List(Address(), load_default=list)
    cc = fields.List(Address(), load_default=list)
    sent_at = WhenField()
    body_html = fields.String(validate=validate.Length(max=1_000_000))
    body_text = fields.String(validate=validate.Length(max=200_000))
    opportunity_id = _id()
    account_id = _id()  # an account the rep chose for the mail (a search), over the sender's
    conversation_id = fields.String(validate=validate.Length(max=255))
    source = fields.String(load_default="outlook", validate=validate.OneOf(SOURCES))
    is_private = fields.Boolean(load_default=False)
    # The key a message logged as it was sent was logged under (``log_email``, ``sending``).
    send_key = fields.String(validate=validate.Regexp(r"^[0-9a-f]{32}$", error="Not a key this add-in made."))

    @pre_load
    def split_lists(self, data: Any, **kwargs: Any) -> Any:
        data = _split_address_lists(data, ("to", "cc"))
        if isinstance(data, dict):
            for key in ("to", "cc"):
                if isinstance(data.get(key), list):
                    data[key] = [a for a in data[key] if isinstance(a, str) and is_valid_address(normalise_address(a))]
        return data


class SendingItemSchema(EmailItemSchema):
    """A message as it is sent (Outlook's OnMessageSend): it has no id yet, only our key."""

    internet_message_id = fields.String(validate=validate.Length(max=512))
    send_key = fields.String(
        required=True, validate=validate.Regexp(r"^[0-9a-f]{32}$", error="Not a key this add-in made.")
    )


class MeetingItemSchema(InputSchema):
    """A calendar appointment as the pane reads it, for ``log_meeting``."""

    event_id = fields.String(required=True, validate=validate.Length(min=1, max=500))
    subject = fields.String(load_default="", validate=validate.Length(max=500))
    start = WhenField(required=True)
    end = WhenField()
    attendees = fields.List(Address(), load_default=list, validate=validate.Length(max=200))
    body_text = fields.String(validate=validate.Length(max=200_000))
    opportunity_id = _id()
    account_id = _id()  # an account the rep chose for the mail (a search), over the sender's
    conversation_id = fields.String(validate=validate.Length(max=255))
    source = fields.String(load_default="outlook", validate=validate.OneOf(SOURCES))

    @pre_load
    def split_lists(self, data: Any, **kwargs: Any) -> Any:
        return _split_address_lists(data, ("attendees",))

    @validates_schema
    def needs_attendees(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("attendees"):
            raise ValidationError("A meeting needs attendees.", "attendees")


class MoveStageSchema(InputSchema):
    # A stage id, or "won" / "lost" to close the deal.
    stage = fields.String(required=True, validate=validate.Length(min=1, max=16))
    loss_reason = fields.String(validate=validate.Length(max=200))
    final_amount = Money()


class NoteSchema(InputSchema):
    body = fields.String(required=True, validate=validate.Length(min=1, max=20_000, error="Write a note first."))
    contact_id = _id()
    account_id = _id()
    opportunity_id = _id()
    is_private = fields.Boolean(load_default=False)


class FollowUpSchema(InputSchema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=300))
    due_at = WhenField(required=True)
    reminder_at = WhenField()  # when to be reminded by e-mail; the due time when none
    contact_id = _id()
    account_id = _id()
    opportunity_id = _id()


class RatingSchema(InputSchema):
    # +1 went well, -1 went badly, 0 takes a rating back.
    rating = fields.Integer(
        required=True,
        validate=validate.OneOf((-1, 0, 1), error="Rate +1 or -1, or 0 to clear."),
        error_messages={"invalid": "Rate +1 or -1, or 0 to clear."},
    )


def _as_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    """A form's MultiDict as a dict in which a repeated field (to=a&to=b) is a list."""
    if hasattr(data, "lists"):
        return {key: values if len(values) > 1 else values[0] for key, values in data.lists()}
    return dict(data)


def _split_address_lists(data: Any, keys: tuple[str, ...]) -> Any:
    """A list field arrives as a list, one string, or one comma-separated string."""
    if not isinstance(data, Mapping):
        return data
    data = _as_dict(data)
    for key in keys:
        values = data.get(key)
        if isinstance(values, str):
            values = [values]
        if isinstance(values, list):
            data[key] = [part.strip() for value in values for part in value.split(",") if part.strip()]
    return data


def load(schema: type[Schema], data: Mapping[str, Any], *, locale: str | None = None) -> dict[str, Any]:
    token = _LOCALE.set(locale or DEFAULT_LOCALE)
    try:
        return schema().load(data)
    except ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
        flat = {key: _flatten(value) for key, value in messages.items()}
        first = next(iter(flat.values()))[0] if flat else "Check the form."
        raise DomainError(first, flat) from None
    finally:
        _LOCALE.reset(token)


def _flatten(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in _flatten(item)]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _flatten(item)]
    return [str(value)]
