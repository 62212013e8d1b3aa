"""Monthly activity rollups beside the daily ones, filled from them: a year's figures read
twelve months' rows rather than 365 days'. Both grains count flagged notes (calls and visits
whose note answers none of its checklist) beside all activities.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 11:25:00
"""
from collections import Counter
from datetime import timezone
from typing import Sequence, Union
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

WEEKDAYS = ("on_mon", "on_tue", "on_wed", "on_thu", "on_fri", "on_sat", "on_sun")  # Monday first, as date.weekday()

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
        sa.Column("flagged", sa.Integer(), server_default="0", nullable=False),
        *(sa.Column(column, sa.Integer(), server_default="0", nullable=False) for column in WEEKDAYS),
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

    with op.batch_alter_table("activity_rollups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("flagged", sa.Integer(), server_default="0", nullable=False))

    connection = op.get_bind()
    _count_flagged_notes(connection)

    def columns(when: str) -> list:
        names = ("organization_id", "owner_id", when, "type", "direction", "outcome", "count", "minutes", "flagged")
        return [sa.column(name, sa.Date()) if name == when else sa.column(name) for name in names]

    daily = sa.table("activity_rollups", *columns("day"))
    monthly = sa.table("activity_month_rollups", *columns("month"), *(sa.column(column) for column in WEEKDAYS))
    counts: Counter = Counter()
    minutes: Counter = Counter()
    flagged: Counter = Counter()
    weekdays: Counter = Counter()
    for org, owner, day, kind, direction, outcome, count, spent, marked in connection.execute(sa.select(daily)):
        key = (org, owner, day.replace(day=1), kind, direction, outcome)
        counts[key] += count
        minutes[key] += spent
        flagged[key] += marked
        weekdays[(key, WEEKDAYS[day.weekday()])] += count
    rows = [{"organization_id": k[0], "owner_id": k[1], "month": k[2], "type": k[3], "direction": k[4], "outcome": k[5],
             "count": n, "minutes": minutes[k], "flagged": flagged[k], **{column: weekdays[(k, column)] for column in WEEKDAYS}}
            for k, n in counts.items()]
    for start in range(0, len(rows), 5_000):
        connection.execute(monthly.insert(), rows[start:start + 5_000])


def _count_flagged_notes(connection) -> None:
    """The daily rows' flagged notes, from the scores migration 0004 gave the activities: per
    owner, local day (the organization's zone), type, direction and outcome."""
    organizations = dict(connection.execute(sa.text("SELECT id, time_zone FROM organizations")).all())
    activities = sa.table("activities", *(sa.column(c) for c in ("organization_id", "owner_id", "type", "direction", "outcome",
                                                                 "checklist_questions", "checklist_answered", "deleted_at")),
                          sa.column("occurred_at", sa.DateTime()))
    marked: Counter = Counter()
    for org, owner, kind, direction, outcome, when in connection.execute(
        sa.select(activities.c.organization_id, activities.c.owner_id, activities.c.type, activities.c.direction, activities.c.outcome,
                  activities.c.occurred_at)
        .where(activities.c.checklist_questions > 0, activities.c.checklist_answered == 0, activities.c.deleted_at.is_(None))
    ):
        when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
        marked[(org, owner, when.astimezone(ZoneInfo(organizations[org])).date(), kind, direction, outcome or "")] += 1
    daily = sa.table("activity_rollups", *(sa.column(c) for c in ("organization_id", "owner_id", "type", "direction", "outcome", "flagged")),
                     sa.column("day", sa.Date()))
    statement = daily.update().where(
        (daily.c.organization_id == sa.bindparam("o")) & (daily.c.owner_id == sa.bindparam("w")) & (daily.c.day == sa.bindparam("d"))
        & (daily.c.type == sa.bindparam("t")) & (daily.c.direction == sa.bindparam("r")) & (daily.c.outcome == sa.bindparam("c"))
    ).values(flagged=sa.bindparam("n"))
    changes = [{"o": k[0], "w": k[1], "d": k[2], "t": k[3], "r": k[4], "c": k[5], "n": n} for k, n in marked.items()]
    for start in range(0, len(changes), 5_000):
        connection.execute(statement, changes[start:start + 5_000])


def downgrade() -> None:
    with op.batch_alter_table("activity_month_rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_activity_month_rollups_month")
    op.drop_table("activity_month_rollups")
    with op.batch_alter_table("activity_rollups", schema=None) as batch_op:
        batch_op.drop_column("flagged")
