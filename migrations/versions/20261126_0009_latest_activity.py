"""Deals and accounts keep their latest activity (and a deal its latest inbound interaction):
going dark and neglected read them instead of two probes of the activities per deal. Filled
from the live activities.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 13:45:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: Union[str, Sequence[str], None] = "0008"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# services.signals as of this revision: an inbound interaction is an inbound email, a connected
# call, a held meeting or visit.
INBOUND = ("(a.type = 'email' AND a.direction = 'inbound') OR (a.type = 'call' AND a.outcome = 'connected') "
           "OR (a.type IN ('meeting', 'visit') AND a.outcome = 'held')")


def upgrade() -> None:
    with op.batch_alter_table("opportunities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_inbound_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=True))
    newest = ("(SELECT max(a.occurred_at) FROM activities a WHERE a.organization_id = {table}.organization_id "
              "AND a.{link} = {table}.id AND a.deleted_at IS NULL{more})")
    op.execute(f"UPDATE opportunities SET last_activity_at = {newest.format(table='opportunities', link='opportunity_id', more='')}, "
               f"last_inbound_at = {newest.format(table='opportunities', link='opportunity_id', more=f' AND ({INBOUND})')}")
    op.execute(f"UPDATE accounts SET last_activity_at = {newest.format(table='accounts', link='account_id', more='')}")


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("last_activity_at")
    with op.batch_alter_table("opportunities", schema=None) as batch_op:
        batch_op.drop_column("last_inbound_at")
        batch_op.drop_column("last_activity_at")
