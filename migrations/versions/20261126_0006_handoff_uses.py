"""Used "Open full panel" links of the Gmail add-on: each signs in once.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 13:20:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "handoff_uses",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_handoff_uses")),
    )


def downgrade() -> None:
    op.drop_table("handoff_uses")
