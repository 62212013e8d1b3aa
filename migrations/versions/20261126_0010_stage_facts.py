"""Deals keep what stage conversion reads of their stage changes: a bit per stage position
entered, the furthest position, and whether they were ever won. A cohort's conversion reads
one row per deal instead of every stage change. Filled from the stage changes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 16:00:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: Union[str, Sequence[str], None] = "0009"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

CHANGES = ("FROM stage_changes c JOIN stages s ON s.id = c.to_stage_id "
           "WHERE c.organization_id = opportunities.organization_id AND c.opportunity_id = opportunities.id")


def upgrade() -> None:
    with op.batch_alter_table("opportunities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stages_reached", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("furthest_position", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("ever_won", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute(f"UPDATE opportunities SET stages_reached = COALESCE((SELECT sum(DISTINCT CAST(1 AS BIGINT) << s.position) {CHANGES}), 0), "
               f"furthest_position = (SELECT max(s.position) {CHANGES}), "
               f"ever_won = ((SELECT count(*) {CHANGES} AND c.to_status = 'won') > 0)")


def downgrade() -> None:
    with op.batch_alter_table("opportunities", schema=None) as batch_op:
        batch_op.drop_column("ever_won")
        batch_op.drop_column("furthest_position")
        batch_op.drop_column("stages_reached")
