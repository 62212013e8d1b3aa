"""Indexes for the manager's panel, read on every look:

* quotas by owner: a team's targets read its reps' quotas, not the organization's year;
* activities by owner now carry ``deleted_at``: counting a team's last weeks (drawdown)
  reads the index alone, without a visit to each activity's row.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 12:50:00
"""
from typing import Sequence, Union

from alembic import op

revision: str = "0007"
down_revision: Union[str, Sequence[str], None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index("ix_quotas_user", "quotas", ["organization_id", "user_id", "period_start"])
    op.drop_index("ix_activities_owner", table_name="activities")
    op.create_index("ix_activities_owner", "activities", ["organization_id", "owner_id", "occurred_at", "deleted_at"])


def downgrade() -> None:
    op.drop_index("ix_activities_owner", table_name="activities")
    op.create_index("ix_activities_owner", "activities", ["organization_id", "owner_id", "occurred_at"])
    op.drop_index("ix_quotas_user", table_name="quotas")
