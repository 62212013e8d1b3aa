"""Fiscal-year activity rollups beside the daily and monthly ones, by rep and type, with their
attempts and contacts; filled from the monthly: a fiscal year's summary reads one row per
rep and type.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 13:30:00
"""
from collections import Counter
from datetime import date
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

WEEKDAYS = ("on_mon", "on_tue", "on_wed", "on_thu", "on_fri", "on_sat", "on_sun")
COUNTS = ("count", "minutes", "flagged", *WEEKDAYS)
# services.signals as of this revision: an attempt is an outbound call or email; a contact an
# inbound email, a connected call, a held meeting or visit.
CONTACTS = {"email": ("direction", "inbound"), "call": ("outcome", "connected"), "meeting": ("outcome", "held"),
            "visit": ("outcome", "held")}

revision: str = "0008"
down_revision: Union[str, Sequence[str], None] = "0007"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "activity_year_rollups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Date(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("flagged", sa.Integer(), server_default="0", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("contacts", sa.Integer(), server_default="0", nullable=False),
        *(sa.Column(column, sa.Integer(), server_default="0", nullable=False) for column in WEEKDAYS),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("count >= 0", name=op.f("ck_activity_year_rollups_count_not_negative")),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], name=op.f("fk_activity_year_rollups_organization_id_organizations"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_activity_year_rollups_owner_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_year_rollups")),
        sa.UniqueConstraint("organization_id", "owner_id", "year", "type", name="uq_activity_year_rollups_key"),
    )
    with op.batch_alter_table("activity_year_rollups", schema=None) as batch_op:
        batch_op.create_index("ix_activity_year_rollups_year", ["organization_id", "year"], unique=False)

    # Each organization's months summed into its fiscal years, by rep and type.
    connection = op.get_bind()
    fiscal = dict(connection.execute(sa.text("SELECT id, fiscal_year_start_month FROM organizations")).all())
    monthly = sa.table("activity_month_rollups", *(sa.column(c) for c in ("organization_id", "owner_id", "type", "direction", "outcome",
                                                                           *COUNTS)), sa.column("month", sa.Date()))
    yearly = sa.table("activity_year_rollups", *(sa.column(c) for c in ("organization_id", "owner_id", "type", *COUNTS, "attempts",
                                                                        "contacts")), sa.column("year", sa.Date()))
    totals: dict[tuple, Counter] = {}
    for row in connection.execute(sa.select(monthly)).mappings():
        first, month, kind = fiscal[row["organization_id"]], row["month"], row["type"]
        year = date(month.year if month.month >= first else month.year - 1, first, 1)
        total = totals.setdefault((row["organization_id"], row["owner_id"], year, kind), Counter())
        total.update({c: row[c] for c in COUNTS})
        if kind in ("call", "email") and row["direction"] == "outbound":
            total["attempts"] += row["count"]
        if kind in CONTACTS and row[CONTACTS[kind][0]] == CONTACTS[kind][1]:
            total["contacts"] += row["count"]
    rows = [{"organization_id": org, "owner_id": owner, "year": year, "type": kind,
             **{c: total[c] for c in (*COUNTS, "attempts", "contacts")}} for (org, owner, year, kind), total in totals.items()]
    for start in range(0, len(rows), 5_000):
        connection.execute(yearly.insert(), rows[start:start + 5_000])


def downgrade() -> None:
    with op.batch_alter_table("activity_year_rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_activity_year_rollups_year")
    op.drop_table("activity_year_rollups")
