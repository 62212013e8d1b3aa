"""The pipeline an admin shapes: stages added, renamed, reordered, retired; note checklists.

A stage's position is what stage conversion reads "later" by (each deal keeps the positions it
entered as bits, ``Opportunity.stages_reached``). Reordering gives the stages new positions and
recomputes every deal's kept facts from its stage changes, so conversion reads the new order for
every cohort, past ones included. Stages are never deleted: a retired stage takes no new deals
and leaves the pane's choices, while the deals in it, their stage changes and the figures of the
periods they fall in keep it. Won and lost are a deal's status (PRODUCT.md), not stages.

A checklist change applies to the notes written from then on: a note's score is kept as it was
written, against the questions asked then.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from services.access import get_scoped, require_role
from services.audit import record_event, snapshot
from services.deals import recompute_stage_facts
from services.errors import DomainError
from services.models import NoteChecklist, Opportunity, Stage, User
from services.notes import SCORED_TYPES
from services.schemas import load, parse_id
from services.types import utcnow

STAGE_FIELDS = ("name", "position", "probability", "sla_days", "retired_at")
MAX_QUESTIONS = 20


class Probability(fields.Field):
    """A win probability as a percentage (``45``, ``"45 %"``) or a fraction (``0.45``)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        text = str(value).strip().removesuffix("%").strip().replace(",", ".")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValidationError("Enter the win probability as a percentage, 0 to 100.") from None
        if not number.is_finite():
            raise ValidationError("Enter the win probability as a percentage, 0 to 100.")
        if isinstance(value, str) or number > 1:
            number = number / 100
        if not 0 <= number <= 1:
            raise ValidationError("Enter the win probability as a percentage, 0 to 100.")
        return number.quantize(Decimal("0.0001"))


class StageSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    name = fields.String(validate=validate.Length(min=1, max=80))
    probability = Probability()
    sla_days = fields.Integer(allow_none=True, validate=validate.Range(1, 3650))

    @pre_load
    def _blank_is_none(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict) and data.get("sla_days") in ("", None) and "sla_days" in data:
            return dict(data) | {"sla_days": None}
        return data


def _stage_name(session: Session, org_id: int, name: str, stage_id: int | None = None) -> str:
    name = name.strip()
    if not name:
        raise DomainError("Name the stage.", {"name": ["Name the stage."]})
    if name.lower() in ("won", "lost", "open"):
        raise DomainError(
            "Won and lost are a deal's status, not stages.", {"name": ["Won and lost are statuses, not stages."]}
        )
    clash = session.scalar(
        select(Stage.id).where(
            Stage.organization_id == org_id, func.lower(Stage.name) == name.lower(), Stage.id != (stage_id or 0)
        )
    )
    if clash is not None:
        raise DomainError("Another stage has this name.", {"name": ["Another stage has this name."]})
    return name


def add_stage(session: Session, actor: User, data: dict[str, Any]) -> Stage:
    """A new stage at the end of the pipeline."""
    require_role(actor, "admin")
    values = load(StageSchema, data)
    if "name" not in values or "probability" not in values:
        raise DomainError("Name the stage and give its win probability.", {"name": ["Required."]})
    name = _stage_name(session, actor.organization_id, values["name"])
    last = session.scalar(select(func.max(Stage.position)).where(Stage.organization_id == actor.organization_id))
    position = (last or 0) + 1
    if position > Stage.MAX_POSITION:
        raise DomainError(f"A pipeline has at most {Stage.MAX_POSITION} stages, retired ones included.")
    stage = Stage(
        organization_id=actor.organization_id,
        name=name,
        position=position,
        probability=values["probability"],
        sla_days=values.get("sla_days"),
    )
    session.add(stage)
    session.flush()
    record_event(session, actor, "create", stage, after=snapshot(stage, STAGE_FIELDS))
    return stage


def change_stage(session: Session, actor: User, stage_id: int, data: dict[str, Any]) -> Stage:
    """Rename a stage, or change its probability or SLA: the forecast reads the new probability
    from then on; history names stages by id, so a rename renames them everywhere."""
    require_role(actor, "admin")
    stage = get_scoped(session, actor, Stage, stage_id, "stage")
    values = load(StageSchema, data)
    if "name" in values:
        values["name"] = _stage_name(session, actor.organization_id, values["name"], stage.id)
    before = snapshot(stage, STAGE_FIELDS)
    for key, value in values.items():
        setattr(stage, key, value)
    after = snapshot(stage, STAGE_FIELDS)
    if after != before:
        record_event(session, actor, "update", stage, before=before, after=after)
    return stage


def retire_stage(session: Session, actor: User, stage_id: int, retired: bool = True) -> Stage:
    """Retire a stage (or bring it back). The last stage taking deals is never retired."""
    require_role(actor, "admin")
    stage = get_scoped(session, actor, Stage, stage_id, "stage")
    if retired and stage.retired_at is None:
        left = session.scalar(
            select(func.count())
            .select_from(Stage)
            .where(Stage.organization_id == actor.organization_id, Stage.retired_at.is_(None), Stage.id != stage.id)
        )
        if not left:
            raise DomainError("The pipeline keeps at least one stage that takes deals.")
        stage.retired_at = utcnow()
        record_event(session, actor, "retire", stage, after=snapshot(stage, STAGE_FIELDS))
    elif not retired and stage.retired_at is not None:
        stage.retired_at = None
        record_event(session, actor, "restore", stage, after=snapshot(stage, STAGE_FIELDS))
    return stage


def reorder_stages(session: Session, actor: User, order: list[Any]) -> list[Stage]:
    """Put the stages in this order (every stage's id once, retired ones too); each takes the
    position of its place, and every deal's kept stage facts are recomputed for the new order."""
    require_role(actor, "admin")
    stages = {
        stage.id: stage
        for stage in session.scalars(
            select(Stage).where(Stage.organization_id == actor.organization_id).with_for_update()
        )
    }
    ids = [parse_id(value) for value in order]
    if sorted(i for i in ids if i is not None) != sorted(stages) or len(ids) != len(stages):
        raise DomainError("Give every stage of the pipeline once, in its new order.", {"order": ["Every stage once."]})
    before = {stage_id: stage.position for stage_id, stage in stages.items()}
    if [stage_id for stage_id, _ in sorted(before.items(), key=lambda item: item[1])] == ids:
        return [stages[i] for i in ids]
    # Positions are unique: out of the way first, then into place (both in SQL, past the ORM's order of flushes).
    org = actor.organization_id
    session.execute(update(Stage).where(Stage.organization_id == org).values(position=-Stage.position - 1))
    for position, stage_id in enumerate(ids, start=1):
        session.execute(update(Stage).where(Stage.id == stage_id).values(position=position))
    session.expire_all()
    recompute_stage_facts(session, org)
    record_event(
        session,
        actor,
        "reorder",
        actor.organization,
        before={"order": [i for i, _ in sorted(before.items(), key=lambda item: item[1])]},
        after={"order": ids},
    )
    return [session.get(Stage, i) for i in ids]


def stages(session: Session, actor: User) -> list[tuple[Stage, int]]:
    """The pipeline's stages in order with their open deals, for the admin's page."""
    require_role(actor, "admin")
    counts = dict(
        session.execute(
            select(Opportunity.stage_id, func.count())
            .where(
                Opportunity.organization_id == actor.organization_id,
                Opportunity.status == "open",
                Opportunity.deleted_at.is_(None),
            )
            .group_by(Opportunity.stage_id)
        ).all()
    )
    return [
        (stage, counts.get(stage.id, 0))
        for stage in session.scalars(
            select(Stage).where(Stage.organization_id == actor.organization_id).order_by(Stage.position)
        )
    ]


# -- note checklists ----------------------------------------------------------------------------------


def _questions(value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.splitlines()
    if not isinstance(value, list) or not all(isinstance(q, str) for q in value):
        raise DomainError("Give the questions as a list, one per line.", {"questions": ["A list of questions."]})
    questions = list(dict.fromkeys(q.strip() for q in value if q.strip()))
    if len(questions) > MAX_QUESTIONS or any(len(q) > 200 or ":" in q or "\x00" in q for q in questions):
        raise DomainError(
            f"At most {MAX_QUESTIONS} questions of 200 characters, without a colon (a note answers “Question: answer”).",
            {"questions": ["Too many, too long, or with a colon."]},
        )
    return questions


def set_checklist(session: Session, actor: User, activity_type: Any, questions: Any) -> list[str]:
    """The questions every note of this type should answer: note quality scores the notes of
    calls and visits (``SCORED_TYPES``). An empty list removes the checklist."""
    require_role(actor, "admin")
    if activity_type not in SCORED_TYPES:
        raise DomainError("Checklists are for calls and visits.", {"activity_type": ["Choose call or visit."]})
    clean = _questions(questions)
    checklist = session.scalar(
        select(NoteChecklist).where(
            NoteChecklist.organization_id == actor.organization_id, NoteChecklist.activity_type == activity_type
        )
    )
    before = list(checklist.questions) if checklist is not None else []
    if before == clean:
        return clean
    if checklist is None:
        checklist = NoteChecklist(organization_id=actor.organization_id, activity_type=activity_type, questions=clean)
        session.add(checklist)
        session.flush()
    else:
        checklist.questions = clean
    record_event(session, actor, "checklist", checklist, before={"questions": before}, after={"questions": clean})
    return clean
