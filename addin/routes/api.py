"""The API other systems call: ``/api/v1``, JSON, with an organization's token.

* **Read and sync**: every type lists the records changed since a cursor (all of them from the
  start), in a stable order, a page at a time, with the records deleted outright; a client that
  syncs every minute passes back the cursor it was given and never misses or repeats a change
  (``services.integration.sync``).
* **Write**: every write takes an ``Idempotency-Key``: a retried request answers as the first
  did and writes nothing new. A change or a deletion says the version it is based on
  (``If-Match``); a stale one gets 409 with the record as it is.
* **Errors** are JSON with a stable ``code``, a ``message`` and the ``field`` at fault.
* **Access**: ``Authorization: Bearer <token>``, a token an admin made for the organization
  (``/admin/api-tokens``), ``read`` or ``read write``; rate-limited per token.

The OpenAPI document is generated from the schemas (flask-smorest and apispec) and served at
``/api/v1/openapi.json``.
"""

from __future__ import annotations

import hashlib
import json
from functools import wraps
from typing import Any, Callable

from flask import Flask, Response, current_app, g, jsonify, request
from flask_smorest import Api, Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import HTTPException

from addin.api_schemas import DUMP, GONE, OUT, ErrorOut, EventPage, page_schema
from addin.database import commit, db, one_snapshot, rollback
from addin.security import limiter
from addin.views import RecordIdConverter, refusal_status
from services.mail import activities
from services.integration import api_tokens, records, sync, webhooks
from services.access import get_scoped
from services.mail.contacts import contact_for_phone, create_account, create_contact
from services.deals import create_opportunity, move_stage
from services.errors import Conflict, DomainError, NotFound
from services.followups import add_follow_up
from services.models import Account, Contact, IdempotencyKey, User
from services.integration.cursor import PATTERN as CURSOR_PATTERN
from services.schemas import (
    AccountSchema,
    ActivitySchema,
    Address,
    ContactSchema,
    DealSchema,
    FollowUpSchema,
    InputSchema,
    MoveStageSchema,
    _id,
    load,
)
from services.types import utcnow

bp = Blueprint("api", __name__, url_prefix="/api/v1", description="Sync the CRM store with other systems.")
LIMIT = "1200 per minute"  # per token; the API_RATE_LIMIT setting overrides it
PAGE_DEFAULT, PAGE_MAX = 100, 1000
LOADED = {
    "accounts": (selectinload(Account.domains),),
    "contacts": (selectinload(Contact.emails), selectinload(Contact.phones)),
}


class ScopedApi(Api):
    """flask-smorest, answering errors for the API's paths only: the pane's and the pages' error
    pages stay theirs. Its default error response is ours (``ErrorOut``)."""

    ERROR_SCHEMA = ErrorOut

    def _register_error_handlers(self) -> None:
        return None


# -- errors ---------------------------------------------------------------------------------------


def error_body(code: str, message: str, errors: dict[str, list[str]] | None = None, **extra: Any) -> dict[str, Any]:
    errors = errors or {}
    return {"code": code, "message": message, "field": next(iter(errors), None), "errors": errors, **extra}


def api_error(error: Exception) -> tuple[Response, int]:
    """Any refusal on the API's paths as JSON with a stable code."""
    if isinstance(error, Conflict):
        kind = sync.RECORD_TYPE.get(type(error.current))
        return jsonify(
            error_body(error.code, error.message, current=OUT[kind]().dump(error.current) if kind else None)
        ), 409
    if isinstance(error, DomainError):
        return jsonify(error_body(error.code, error.message, error.errors)), refusal_status(error)
    assert isinstance(error, HTTPException)
    messages = getattr(error, "data", {}).get("messages", {}) if hasattr(error, "data") else {}
    flat = (
        {
            name: [str(m) for m in (problems if isinstance(problems, list) else [problems])]
            for location in messages.values()
            for name, problems in location.items()
        }
        if messages
        else {}
    )
    code = {
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
        415: "unsupported_media_type",
        422: "invalid",
        429: "rate_limited",
    }.get(error.code or 500, "error")
    response = jsonify(error_body(code, error.description or error.name, flat))
    # What the error's own answer says beside its body: a 405's Allow, a 429's Retry-After.
    for name, value in error.get_headers():
        if name.lower() in ("allow", "retry-after", "www-authenticate"):
            response.headers[name] = value
    return response, error.code or 500


def _on_api_paths(error: HTTPException):
    if request.path.startswith(("/api/", "/intake/")):
        return api_error(error)
    return error  # elsewhere, Flask's own page


RATE_HEADERS = {
    name: {"description": text, "schema": {"type": "integer"}}
    for name, text in (
        ("X-RateLimit-Limit", "Requests a token may make in the window."),
        ("X-RateLimit-Remaining", "Left in this window."),
        ("X-RateLimit-Reset", "When the window starts again (Unix time)."),
    )
}
ALWAYS = {
    "401": {
        "description": "No live token, or its owner is no longer an active admin.",
        "content": {"application/json": {"schema": ErrorOut}},
    },
    "429": {
        "description": "Over the token's rate limit (API_RATE_LIMIT): try again after Retry-After seconds.",
        "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}, **RATE_HEADERS},
        "content": {"application/json": {"schema": ErrorOut}},
    },
}


def documented_limits(view: Callable[..., Any]) -> Callable[..., Any]:
    """Every operation answers 401 without a live token and 429 past its rate limit: said in the document."""
    return bp.doc(responses=ALWAYS)(view)


# -- access ---------------------------------------------------------------------------------------


def _token_key() -> str:
    header = request.headers.get("Authorization", "")
    return (
        "api:" + hashlib.sha256(header.encode()).hexdigest()[:24]
        if header
        else "api-anonymous:" + (request.remote_addr or "-")
    )


# Per token, whatever the address (the limiter keeps one list of limits per process: set once, here).
limiter.limit(lambda: current_app.config.get("API_RATE_LIMIT", LIMIT), key_func=_token_key)(bp)


@bp.before_request
def authenticate():
    if request.path.endswith("/openapi.json"):
        return None
    header = request.headers.get("Authorization", "")
    token = api_tokens.token_for(db(), header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None)
    if token is None:
        response = jsonify(error_body("unauthorized", "Send a live API token: Authorization: Bearer <token>."))
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
        return response, 401
    if not token.owner_may_act:  # checked on every request: the owner's rights as they are now
        response = jsonify(
            error_body(
                "token_owner_lost_rights",
                "This token's owner is no longer an active admin: an admin takes it over, or makes a new one.",
            )
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="api", error="invalid_token"'
        return response, 401
    if request.method not in ("GET", "HEAD") and not token.can_write:
        return jsonify(error_body("insufficient_scope", "This token may read, not write.")), 403
    g.api_token = token
    return None


def acting_user(owner_id: Any = None) -> User:
    """Who a write is made as: the rep named in it (``owner_id``: logged as theirs), else the
    admin who made the token."""
    token = g.api_token
    if owner_id not in (None, ""):
        admin = token.created_by
        user = get_scoped(db(), admin, User, owner_id, "owner") if admin is not None else None
        if user is None or not user.is_active:
            raise NotFound("owner")
        return user
    if token.created_by is None or not token.created_by.is_active:
        raise DomainError("The admin who made this token is no longer active: make a new one.", code="token_owner_gone")
    return token.created_by


def version_asked(body: dict[str, Any]) -> int | None:
    text = (request.headers.get("If-Match") or "").strip().strip('"').removeprefix("W/").strip('"')
    value = text or body.get("version")
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        raise DomainError(
            "A version is a whole number (the record's version).",
            {"version": ["Not a version."]},
            code="invalid_version",
        ) from None


def body_json() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise DomainError("Send a JSON object.", code="invalid_json")
    return data


def idempotent(view: Callable[..., tuple[dict[str, Any], int]]) -> Callable[..., Any]:
    """A write taken once per ``Idempotency-Key``: its answer is kept with it, in the same
    transaction, and given back to a retry; the key with another request is refused."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        key = (request.headers.get("Idempotency-Key") or "").strip()
        if not 1 <= len(key) <= 200:
            raise DomainError(
                "Send an Idempotency-Key header (1 to 200 characters) with every write.",
                code="idempotency_key_required",
            )
        digest = hashlib.sha256(
            b"\n".join([request.method.encode(), request.path.encode(), request.get_data()])
        ).hexdigest()
        token = g.api_token

        def kept_answer() -> IdempotencyKey | None:
            return db().scalar(
                select(IdempotencyKey).where(IdempotencyKey.token_id == token.id, IdempotencyKey.key == key)
            )

        def replay(kept: IdempotencyKey):
            if kept.request_hash != digest:
                raise DomainError("This Idempotency-Key was used for another request.", code="idempotency_key_reused")
            response = jsonify(kept.response)
            response.headers["Idempotent-Replayed"] = "true"
            return response, kept.status

        if kept := kept_answer():
            return replay(kept)
        body, status = view(*args, **kwargs)
        db().add(
            IdempotencyKey(
                organization_id=token.organization_id,
                token_id=token.id,
                key=key,
                request_hash=digest,
                status=status,
                response=json.loads(json.dumps(body, default=str)),
            )
        )
        token.last_used_at = utcnow()
        try:
            commit()
        except IntegrityError:  # the same key, at the same moment, from another connection: its answer stands
            rollback()
            if (kept := kept_answer()) is None:
                raise
            return replay(kept)
        return jsonify(body), status

    return wrapper


# -- reading ---------------------------------------------------------------------------------------


class ListArgs(Schema):
    cursor = fields.String(
        metadata={
            "description": "The cursor the last page gave; none for everything from the start.",
            "pattern": CURSOR_PATTERN,
        }
    )
    limit = fields.Integer(load_default=PAGE_DEFAULT, validate=validate.Range(min=1, max=PAGE_MAX))


def _lister(record_type: str) -> None:
    model = sync.SYNCED[record_type]
    dump = DUMP[record_type]

    def list_changes(args: dict[str, Any]) -> Response:
        # The records and the tombstones read in one snapshot: a commit between the two reads
        # could otherwise move the cursor past a record the first did not see.
        page = sync.changes(
            one_snapshot(),
            g.api_token.organization_id,
            record_type,
            sync.Cursor.decode(args.get("cursor")),
            args["limit"],
            options=LOADED.get(record_type, ()),
            plain=record_type not in LOADED,
        )
        # Serialized here (``fast_dump``: the page schema's fields, a thousand records at a time).
        return jsonify(
            {
                "data": [dump(r) for r in page.records],
                "deleted": [GONE(t) for t in page.tombstones],
                "cursor": page.cursor.encode(),
                "has_more": page.more,
            }
        )

    list_changes.__doc__ = f"""The {record_type.replace("_", " ")} changed since the cursor, oldest change first.

    Deleted ones come with ``deleted_at``; those deleted outright under ``deleted``. Pass the
    returned cursor back for what changed after; ``has_more`` says another page waits now."""
    list_changes.__name__ = f"list_{record_type}"
    view = bp.arguments(ListArgs, location="query", as_kwargs=False)(list_changes)
    view = bp.response(200, page_schema(record_type))(view)
    view = bp.alt_response(422, schema=ErrorOut)(view)
    bp.route(f"/{record_type}", endpoint=f"list_{record_type}", methods=["GET"])(documented_limits(view))

    def get_one(record_id: int) -> Any:
        record = db().get(model, record_id)
        if record is None or record.organization_id != g.api_token.organization_id:
            raise NotFound(record_type.rstrip("s").replace("_", " "))
        return record

    get_one.__doc__ = f"One of the {record_type.replace('_', ' ')} (deleted ones too, with ``deleted_at``)."
    get_one.__name__ = f"get_{record_type}"
    view = bp.response(200, OUT[record_type])(get_one)
    view = bp.alt_response(404, schema=ErrorOut)(view)
    bp.route(f"/{record_type}/<id:record_id>", endpoint=f"get_{record_type}", methods=["GET"])(documented_limits(view))


for _type in sync.SYNCED:
    _lister(_type)


@bp.route("/events", endpoint="list_events", methods=["GET"])
@documented_limits
@bp.arguments(ListArgs, location="query", as_kwargs=False)
@bp.response(200, EventPage)
@bp.alt_response(422, schema=ErrorOut)
def list_events(args: dict[str, Any]) -> Response:
    """The changes webhooks announced, oldest first, kept 30 days: what a receiver that was down,
    or whose endpoint was off, catches up from. Pass the returned cursor back for the next."""
    cursor = sync.Cursor.decode(args.get("cursor"))
    # Two seeks past the cursor, read in one snapshot (as a sync page is).
    events = webhooks.events_after(one_snapshot(), g.api_token.organization_id, cursor, args["limit"] + 1)
    page = events[: args["limit"]]
    last = sync.Cursor(page[-1].version, page[-1].id) if page else cursor
    return jsonify(
        {
            "data": [webhooks.event_payload(e) for e in page],
            "has_more": len(events) > len(page),
            "cursor": last.encode(),
        }
    )


# -- writing ---------------------------------------------------------------------------------------

IDEMPOTENCY_KEY = {
    "type": "string",
    "minLength": 1,
    "maxLength": 200,
    "pattern": r"^[\x21-\x7e]([\x20-\x7e]{0,198}[\x21-\x7e])?$",
}
VERSION = {"type": "string", "pattern": r'^(W/)?"?[0-9]{1,18}"?$'}
WRITE_RESPONSES = ((409, "version_conflict"), (422, "invalid"), (404, "not_found"), (403, "forbidden"))


def _documented(
    view: Callable[..., Any],
    request_schema: type[Schema] | None,
    response_schema: type[Schema],
    status: int,
    versioned: bool = False,
) -> Callable[..., Any]:
    parameters = [
        {
            "in": "header",
            "name": "Idempotency-Key",
            "required": True,
            "schema": IDEMPOTENCY_KEY,
            "description": "Any key of yours, 1 to 200 printable characters: a retry with it answers as the first did (kept a day).",
        }
    ]
    if versioned:
        parameters.append(
            {
                "in": "header",
                "name": "If-Match",
                "required": True,
                "schema": VERSION,
                "description": "The version the change is based on (the record's ``version``; an ETag's quotes are taken).",
            }
        )
    doc: dict[str, Any] = {
        "parameters": parameters,
        "responses": {
            **ALWAYS,
            str(status): {"description": "Done", "content": {"application/json": {"schema": response_schema}}},
            **{
                str(code): {"description": name, "content": {"application/json": {"schema": ErrorOut}}}
                for code, name in WRITE_RESPONSES
            },
        },
    }
    if request_schema is not None:
        doc["requestBody"] = {"required": True, "content": {"application/json": {"schema": request_schema}}}
    return bp.doc(**doc)(view)


CREATE: dict[str, tuple[type[Schema], Callable[..., Any]]] = {
    "accounts": (AccountSchema, lambda actor, data: create_account(db(), actor, data)),
    "contacts": (ContactSchema, lambda actor, data: create_contact(db(), actor, data)),
    "leads": (records.LeadSchema, lambda actor, data: records.create_lead(db(), actor, data)),
    "opportunities": (DealSchema, lambda actor, data: create_opportunity(db(), actor, data)),
    "activities": (
        ActivitySchema,
        lambda actor, data: activities.log_activity(db(), actor, {**data, "source": "api"})[0],
    ),
    "follow_ups": (FollowUpSchema, lambda actor, data: add_follow_up(db(), actor, data)),
    "quotas": (records.QuotaSchema, lambda actor, data: records.create_quota(db(), actor, data)),
}


def _creator(record_type: str) -> None:
    schema, make = CREATE[record_type]

    def create() -> tuple[dict[str, Any], int]:
        data = body_json()
        # A record made as one of the organization's reps (theirs), else as the token's admin.
        owner = (
            data.get("owner_id")
            if record_type in ("accounts", "contacts", "opportunities", "activities", "follow_ups")
            else None
        )
        record = make(acting_user(owner), data)
        db().flush()
        return OUT[record_type]().dump(record), 201

    create.__doc__ = f"Make one of the {record_type.replace('_', ' ')}."
    create.__name__ = f"create_{record_type}"
    view = _documented(idempotent(create), schema, OUT[record_type], 201)
    bp.route(f"/{record_type}", endpoint=f"create_{record_type}", methods=["POST"])(view)


def _changer(record_type: str) -> None:
    model = sync.SYNCED[record_type]

    def change(record_id: int) -> tuple[dict[str, Any], int]:
        data = body_json()
        record = records.update_record(
            db(),
            acting_user(),
            model,
            record_id,
            {k: v for k, v in data.items() if k != "version"},
            version_asked(data),
        )
        return OUT[record_type]().dump(record), 200

    change.__doc__ = (
        f"Change some fields of one of the {record_type.replace('_', ' ')}, if it is still at the version given."
    )
    change.__name__ = f"change_{record_type}"
    view = _documented(idempotent(change), records.CHANGES[model], OUT[record_type], 200, versioned=True)
    bp.route(f"/{record_type}/<id:record_id>", endpoint=f"change_{record_type}", methods=["PATCH"])(view)

    if not hasattr(model, "deleted_at"):
        return

    def remove(record_id: int) -> tuple[dict[str, Any], int]:
        record = records.delete_record(db(), acting_user(), model, record_id, version_asked({}))
        return OUT[record_type]().dump(record), 200

    remove.__doc__ = f"Delete one of the {record_type.replace('_', ' ')} (it stays, with ``deleted_at``), if still at the version given."
    remove.__name__ = f"delete_{record_type}"
    view = _documented(idempotent(remove), None, OUT[record_type], 200, versioned=True)
    bp.route(f"/{record_type}/<id:record_id>", endpoint=f"delete_{record_type}", methods=["DELETE"])(view)


for _type in CREATE:
    _creator(_type)
for _type, _model in sync.SYNCED.items():
    if _model in records.CHANGES:
        _changer(_type)


def stage(record_id: int) -> tuple[dict[str, Any], int]:
    """Move a deal to another stage (a stage id), or close it: ``won`` (with ``final_amount``) or
    ``lost`` (with ``loss_reason``), if it is still at the version given."""
    data = body_json()
    actor = acting_user()
    records.check_version(
        get_scoped(db(), actor, sync.SYNCED["opportunities"], record_id, "deal", for_update=True), version_asked(data)
    )
    deal = move_stage(db(), actor, record_id, {k: v for k, v in data.items() if k != "version"})
    return OUT["opportunities"]().dump(deal), 200


bp.route("/opportunities/<id:record_id>/stage", endpoint="move_stage", methods=["POST"])(
    _documented(idempotent(stage), MoveStageSchema, OUT["opportunities"], 200, versioned=True)
)


class CallSchema(InputSchema):
    """A call as a telephony system reports it."""

    owner_id = fields.Integer(metadata={"description": "The rep who took or made it (else the token's admin)."})
    external_id = fields.String(
        required=True, validate=validate.Length(min=1, max=200), metadata={"description": "The call's id there."}
    )
    direction = fields.String(required=True, validate=validate.OneOf(("inbound", "outbound")))
    started_at = fields.DateTime(required=True)
    duration_seconds = fields.Integer(required=True, validate=validate.Range(min=0, max=86_400))
    outcome = fields.String(required=True, validate=validate.OneOf(("connected", "no_answer", "voicemail", "busy")))
    phone = fields.String(
        validate=validate.Length(max=40), metadata={"description": "The other party's number: matched to a contact."}
    )
    contact_id = _id()
    opportunity_id = _id()
    notes = fields.String(validate=validate.Length(max=20_000))


def call() -> tuple[dict[str, Any], int]:
    """Log a call from telephony as an activity: its duration in minutes (rounded up), its outcome,
    the contact with that number. The same call reported again is the same activity."""
    data = body_json()
    actor = acting_user(data.get("owner_id"))
    values = load(CallSchema, data)
    contact_id = values.get("contact_id") or contact_for_phone(db(), actor.organization_id, values.get("phone"))
    activity, _ = activities.log_activity(
        db(),
        actor,
        {
            "type": "call",
            "direction": values["direction"],
            "occurred_at": values["started_at"].isoformat(),
            "duration_minutes": -(-values["duration_seconds"] // 60),
            "outcome": values["outcome"],
            "body_text": values.get("notes"),
            "contact_id": contact_id,
            "opportunity_id": values.get("opportunity_id"),
            "external_id": f"call:{values['external_id']}",
            "source": "api",
        },
    )
    return OUT["activities"]().dump(activity), 201


bp.route("/calls", endpoint="calls", methods=["POST"])(
    _documented(idempotent(call), CallSchema, OUT["activities"], 201)
)


EMAIL = r"^[a-z0-9]+([._+-][a-z0-9]+)*@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}$"


def as_the_code_reads(converter: Any, field: fields.Field, ret: dict[str, Any], **_: Any) -> dict[str, Any]:
    """What an input schema does beside its validators, said in the document (``InputSchema``):
    an optional field may be null or blank (either is as if it were missing); a required text
    must hold more than spaces; an address is an e-mail address."""
    if not isinstance(field.parent, InputSchema):
        return {}
    said: dict[str, Any] = {}
    if not field.required and "$ref" not in ret:
        said["nullable"] = True
    if isinstance(field, Address):
        said.update(format="email", pattern=EMAIL)
    elif isinstance(field, fields.String) and field.required and "enum" not in ret and "pattern" not in ret:
        said["pattern"] = r"\S"
    return said


def init_app(app: Flask) -> None:
    app.config.setdefault("API_TITLE", "Inbox CRM")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    api = app.extensions["inboxcrm.api"] = ScopedApi(app)  # one per app: its document is the app's
    api.register_converter(RecordIdConverter, lambda converter: {"type": "integer", "minimum": 1, "maximum": 2**31 - 1})
    api.ma_plugin.converter.add_attribute_function(as_the_code_reads)
    api.spec.components.security_scheme(
        "token", {"type": "http", "scheme": "bearer", "description": "An API token from /admin/api-tokens."}
    )
    api.spec.options["security"] = [{"token": []}]
    api.register_blueprint(bp)
    app.register_error_handler(HTTPException, _on_api_paths)
    for endpoint, view in app.view_functions.items():
        if endpoint.startswith("api."):
            view.csrf_exempt = True  # a token in a header, no cookie: nothing for a cross-site request to ride on
