"""The fiscal-year rollups count each of their months (``month_01``, the year's first, to
``month_12``), so that the trends read one row per rep, type and year rather than one per rep,
key and month. Filled from the monthly rollups.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26 17:00:00
"""
from datetime import date
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: Union[str, Sequence[str], None] = "0011"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

MONTHS = [f"month_{n:02d}" for n in range(1, 13)]


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def upgrade() -> None:
    with op.batch_alter_table("activity_year_rollups", schema=None) as batch_op:
        for column in MONTHS:
            batch_op.add_column(sa.Column(column, sa.Integer(), server_default="0", nullable=False))
    # Each year row's n-th month is the monthly rollups' month n - 1 months after its start:
    # one statement per (year, month) the store holds.
    bind = op.get_bind()
    years = bind.execute(sa.text("SELECT DISTINCT year FROM activity_year_rollups")).scalars().all()
    for year in years:
        start = year if isinstance(year, date) else date.fromisoformat(str(year))
        for n, column in enumerate(MONTHS):
            bind.execute(sa.text(
                f"UPDATE activity_year_rollups SET {column} = COALESCE((SELECT sum(m.count) FROM activity_month_rollups m "
                "WHERE m.organization_id = activity_year_rollups.organization_id AND m.owner_id = activity_year_rollups.owner_id "
                "AND m.type = activity_year_rollups.type AND m.month = :month), 0) WHERE year = :year"
            ), {"month": _add_months(start, n), "year": start})


def downgrade() -> None:
    with op.batch_alter_table("activity_year_rollups", schema=None) as batch_op:
        for column in reversed(MONTHS):
            batch_op.drop_column(column)
