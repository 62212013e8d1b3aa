"""Monthly activity rollups beside the daily ones, filled from them: a year's figures read
twelve months' rows rather than 365 days'.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 11:25:00
"""
from collections import Counter
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "activity_month_rollups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("count >= 0", name=op.f("ck_activity_month_rollups_count_not_negative")),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], name=op.f("fk_activity_month_rollups_organization_id_organizations"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_activity_month_rollups_owner_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_month_rollups")),
        sa.UniqueConstraint("organization_id", "owner_id", "month", "type", "direction", "outcome", name="uq_activity_month_rollups_key"),
    )
    with op.batch_alter_table("activity_month_rollups", schema=None) as batch_op:
        batch_op.create_index("ix_activity_month_rollups_month", ["organization_id", "month"], unique=False)

    connection = op.get_bind()
    def columns(when: str) -> list:
        names = ("organization_id", "owner_id", when, "type", "direction", "outcome", "count", "minutes")
        return [sa.column(name, sa.Date()) if name == when else sa.column(name) for name in names]

    daily = sa.table("activity_rollups", *columns("day"))
    monthly = sa.table("activity_month_rollups", *columns("month"))
    counts: Counter = Counter()
    minutes: Counter = Counter()
    for org, owner, day, kind, direction, outcome, count, spent in connection.execute(sa.select(daily)):
        key = (org, owner, day.replace(day=1), kind, direction, outcome)
        counts[key] += count
        minutes[key] += spent
    rows = [{"organization_id": k[0], "owner_id": k[1], "month": k[2], "type": k[3], "direction": k[4], "outcome": k[5],
             "count": n, "minutes": minutes[k]} for k, n in counts.items()]
    for start in range(0, len(rows), 5_000):
        connection.execute(monthly.insert(), rows[start:start + 5_000])


def downgrade() -> None:
    with op.batch_alter_table("activity_month_rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_activity_month_rollups_month")
    op.drop_table("activity_month_rollups")
