"""A partial index of the live activities that have a sentiment score: a deal's health reads
its latest three scores, and walking the deal's every activity to find them (most have none:
calls, outbound mail; some are undone) cost more than the rest of the pane's context.

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-26 23:10:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: Union[str, Sequence[str], None] = "0021"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

SCORED = sa.text("sentiment IS NOT NULL AND deleted_at IS NULL")


def upgrade() -> None:
    op.create_index("ix_activities_scored", "activities", ["organization_id", "opportunity_id", "occurred_at"], unique=False,
                    sqlite_where=SCORED, postgresql_where=SCORED)
    if op.get_bind().dialect.name == "sqlite":
        # The planner's statistics for the new index (the table's others stand).
        op.execute("ANALYZE ix_activities_scored")


def downgrade() -> None:
    op.drop_index("ix_activities_scored", table_name="activities")
