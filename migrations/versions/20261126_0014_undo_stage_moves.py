"""A stage change keeps the deal as it was before the move (amount, loss reason, close time,
time in its stage), so that the rep can take a move back, won and lost included. Older
changes stay without: nobody undoes a move older than ten minutes.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26 18:00:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: Union[str, Sequence[str], None] = "0013"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("stage_changes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("from_amount", sa.Numeric(14, 2), nullable=True))
        batch_op.add_column(sa.Column("from_loss_reason", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("from_closed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("from_stage_entered_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stage_changes", schema=None) as batch_op:
        batch_op.drop_column("from_stage_entered_at")
        batch_op.drop_column("from_closed_at")
        batch_op.drop_column("from_loss_reason")
        batch_op.drop_column("from_amount")
