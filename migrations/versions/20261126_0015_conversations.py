"""A logged email keeps the mail thread it belongs to (``conversation_id``): the deal the rep
chose for it is offered first for the thread's next mails.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26 18:30:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: Union[str, Sequence[str], None] = "0014"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("conversation_id", sa.String(length=255), nullable=True))
    op.create_index("ix_activities_conversation", "activities", ["organization_id", "conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_activities_conversation", table_name="activities")
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.drop_column("conversation_id")
