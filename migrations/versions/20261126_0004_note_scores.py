"""Activities keep their note's checklist score (questions asked, questions answered), so
note quality is counted in SQL; existing calls and visits are scored from their notes. An
index serves lead response times (a lead's first touch).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 10:55:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

SCORED_TYPES = ("call", "visit")


def _answered(body: str | None, questions: list[str]) -> int:
    # The rule of services/notes.py, frozen here as it stood when this migration was written.
    answers: dict[str, str] = {}
    for line in (body or "").splitlines():
        question, _, answer = line.partition(":")
        answers[question.strip()] = answer.strip()
    return sum(1 for question in questions if answers.get(question))


def upgrade() -> None:
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("checklist_questions", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("checklist_answered", sa.SmallInteger(), nullable=True))
        batch_op.create_index("ix_activities_lead", ["organization_id", "lead_id", "occurred_at"], unique=False)

    connection = op.get_bind()
    checklists = sa.table("note_checklists", sa.column("organization_id"), sa.column("activity_type"), sa.column("questions", sa.JSON))
    activities = sa.table("activities", sa.column("id"), sa.column("organization_id"), sa.column("type"), sa.column("body_text"),
                          sa.column("checklist_questions"), sa.column("checklist_answered"))
    questions = {(org, kind): list(qs or []) for org, kind, qs in connection.execute(sa.select(checklists))}
    rows = connection.execute(
        sa.select(activities.c.id, activities.c.organization_id, activities.c.type, activities.c.body_text)
        .where(activities.c.type.in_(SCORED_TYPES))
    ).all()
    changes = []
    for activity_id, org, kind, body in rows:
        asked = questions.get((org, kind), [])
        changes.append({"b_id": activity_id, "questions": len(asked), "answered": _answered(body, asked)})
    statement = (
        activities.update().where(activities.c.id == sa.bindparam("b_id"))
        .values(checklist_questions=sa.bindparam("questions"), checklist_answered=sa.bindparam("answered"))
    )
    for start in range(0, len(changes), 5_000):
        connection.execute(statement, changes[start:start + 5_000])


def downgrade() -> None:
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.drop_index("ix_activities_lead")
        batch_op.drop_column("checklist_answered")
        batch_op.drop_column("checklist_questions")
