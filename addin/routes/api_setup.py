"""The organization's set-up through the API, for scripting what the admin pages do: settings,
stages, note checklists, invitations and leavers. The same services, the same validation and
audit; every write takes an ``Idempotency-Key`` like the API's others, and acts as the token's
admin (a token whose owner is no longer an admin opens nothing)."""

from __future__ import annotations

from typing import Any

from flask import current_app, url_for
from marshmallow import Schema, fields
from sqlalchemy import event

from addin.database import db
from addin.jobs import enqueue_rebuild
from addin.routes.api import _documented, acting_user, bp, body_json, documented_limits, idempotent
from addin.routes.organization import send_invitation
from services.notes import checklists
from services.setup import people, pipeline
from services.setup.organizations import OrganizationSchema, change_settings, organization_values


class StageOut(Schema):
    id = fields.Integer()
    name = fields.String()
    position = fields.Integer()
    probability = fields.Decimal(as_string=True, metadata={"type": "string", "format": "decimal", "example": "0.4500"})
    sla_days = fields.Integer(allow_none=True)
    retired = fields.Method("_retired")

    def _retired(self, stage: Any) -> bool:
        return stage.retired_at is not None


class OrganizationOut(Schema):
    settings = fields.Dict()
    stages = fields.List(fields.Nested(StageOut))
    checklists = fields.Dict()


class StageIn(Schema):
    name = fields.String()
    probability = fields.Raw(metadata={"description": "Per cent (45) or a fraction (0.45)."})
    sla_days = fields.Integer(allow_none=True)
    retired = fields.Boolean()


class OrderIn(Schema):
    order = fields.List(fields.Integer(), required=True, metadata={"description": "Every stage's id once, in order."})


class ChecklistIn(Schema):
    questions = fields.List(fields.String(), required=True)


class InvitationIn(Schema):
    email = fields.String(required=True)
    name = fields.String()
    role = fields.String(metadata={"enum": ["rep", "manager", "admin"]})
    team_id = fields.Integer(allow_none=True)


class InvitationOut(Schema):
    id = fields.Integer()
    email = fields.String()
    role = fields.String()
    team_id = fields.Integer(allow_none=True)
    expires_at = fields.DateTime()
    link = fields.String(metadata={"description": "Only when no mail server sent it: the single-use link to send."})


class DeactivateIn(Schema):
    successor_id = fields.Integer(required=True, metadata={"description": "Who takes over the open work."})


class HandoverOut(Schema):
    deals = fields.Integer()
    accounts = fields.Integer()
    contacts = fields.Integer()
    leads = fields.Integer()
    follow_ups = fields.Integer()


def _organization_data() -> dict[str, Any]:
    actor = acting_user()
    return {
        "settings": organization_values(actor.organization),
        "stages": [stage for stage, _ in pipeline.stages(db(), actor)],
        "checklists": checklists(db(), actor.organization_id),
    }


def _organization() -> dict[str, Any]:
    return OrganizationOut().dump(_organization_data())


@bp.route("/organization", endpoint="get_organization", methods=["GET"])
@documented_limits
@bp.response(200, OrganizationOut)
def get_organization() -> dict[str, Any]:
    """The organization's settings, its pipeline's stages and its note checklists."""
    return _organization_data()


def change_organization() -> tuple[dict[str, Any], int]:
    """Change any of the settings; a new time zone or fiscal year recounts the figures on the worker."""
    actor = acting_user()
    changed = change_settings(db(), actor, body_json())
    if "time_zone" in changed or "fiscal_year_start_month" in changed:
        organization_id = actor.organization_id
        # Queued once the change is committed: the worker must read the new zone or fiscal year.
        event.listen(db(), "after_commit", lambda _session: enqueue_rebuild(organization_id), once=True)
    return _organization(), 200


bp.route("/organization", endpoint="change_organization", methods=["PATCH"])(
    _documented(idempotent(change_organization), OrganizationSchema, OrganizationOut, 200)
)


def add_stage() -> tuple[dict[str, Any], int]:
    """A stage at the end of the pipeline."""
    return StageOut().dump(pipeline.add_stage(db(), acting_user(), body_json())), 201


bp.route("/stages", endpoint="add_stage", methods=["POST"])(_documented(idempotent(add_stage), StageIn, StageOut, 201))


def change_stage(record_id: int) -> tuple[dict[str, Any], int]:
    """Rename a stage, change its probability or SLA, retire it (``retired: true``) or bring it back."""
    data = body_json()
    actor = acting_user()
    stage = pipeline.change_stage(db(), actor, record_id, {k: v for k, v in data.items() if k != "retired"})
    if "retired" in data:
        stage = pipeline.retire_stage(db(), actor, record_id, bool(data["retired"]))
    return StageOut().dump(stage), 200


bp.route("/stages/<id:record_id>", endpoint="change_stage", methods=["PATCH"])(
    _documented(idempotent(change_stage), StageIn, StageOut, 200)
)


def reorder() -> tuple[dict[str, Any], int]:
    """The stages in a new order (stage conversion reads it for every cohort)."""
    order = body_json().get("order")
    stages = pipeline.reorder_stages(db(), acting_user(), order if isinstance(order, list) else [])
    return {"stages": StageOut(many=True).dump(stages)}, 200


bp.route("/stages/order", endpoint="reorder_stages", methods=["PUT"])(
    _documented(idempotent(reorder), OrderIn, OrganizationOut, 200)
)


def set_checklist(activity_type: str) -> tuple[dict[str, Any], int]:
    """The questions every note of this type (call or visit) answers; an empty list removes them."""
    questions = pipeline.set_checklist(db(), acting_user(), activity_type, body_json().get("questions"))
    return {"activity_type": activity_type, "questions": questions}, 200


bp.route("/checklists/<activity_type>", endpoint="set_checklist", methods=["PUT"])(
    _documented(idempotent(set_checklist), ChecklistIn, ChecklistIn, 200)
)


def invite() -> tuple[dict[str, Any], int]:
    """Invite someone by e-mail with a role and a team: the link is mailed (or answered, when no
    mail server is set, for the script to send)."""
    actor = acting_user()
    invitation, token = people.invite(db(), actor, body_json())
    answer = InvitationOut().dump(invitation)
    # Mailed once the invitation is committed (the idempotent write commits after this returns);
    # with no mail server, the link is in the answer for the script to send.
    if not current_app.config["SMTP_HOST"]:
        answer["link"] = url_for("setup.join", token=token, _external=True)
    else:
        name = actor.organization.name
        event.listen(db(), "after_commit", lambda _session: send_invitation(invitation, token, name), once=True)
    return answer, 201


bp.route("/invitations", endpoint="invite", methods=["POST"])(
    _documented(idempotent(invite), InvitationIn, InvitationOut, 201)
)


def deactivate(record_id: int) -> tuple[dict[str, Any], int]:
    """A leaver: signed out everywhere, their open work handed to ``successor_id``."""
    handover = people.deactivate(db(), acting_user(), record_id, body_json().get("successor_id"))
    return HandoverOut().dump(handover), 200


bp.route("/users/<id:record_id>/deactivate", endpoint="deactivate_user", methods=["POST"])(
    _documented(idempotent(deactivate), DeactivateIn, HandoverOut, 200)
)
