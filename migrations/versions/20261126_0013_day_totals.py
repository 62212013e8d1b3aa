"""Activities per owner and local day, whatever their type (``activity_day_totals``): the
drawdown reads a row per rep and day for the last five weeks, not every activity. Filled from
the daily rollups.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 17:30:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: Union[str, Sequence[str], None] = "0012"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "activity_day_totals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("flagged", sa.Integer(), server_default="0", nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("count >= 0", name=op.f("ck_activity_day_totals_count_not_negative")),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], name=op.f("fk_activity_day_totals_organization_id_organizations"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_activity_day_totals_owner_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_day_totals")),
        sa.UniqueConstraint("organization_id", "owner_id", "day", name="uq_activity_day_totals_key"),
    )
    op.execute("INSERT INTO activity_day_totals (organization_id, owner_id, day, count, minutes, flagged) "
               "SELECT organization_id, owner_id, day, sum(count), sum(minutes), sum(flagged) FROM activity_rollups "
               "GROUP BY organization_id, owner_id, day")


def downgrade() -> None:
    op.drop_table("activity_day_totals")
