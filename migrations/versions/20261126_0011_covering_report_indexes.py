"""The deal indexes by close and by creation cover what the reports read of them (outcomes,
won by owner, trends; a cohort's stage conversion): a year of deals read from the index alone.
Quotas get an index by metric: a team's few revenue quotas among the reps' many activity ones;
the open deals a partial index of their own (the pipeline, the forecast, the alerts).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 16:20:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: Union[str, Sequence[str], None] = "0010"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

CLOSED = ["organization_id", "closed_at", "status", "owner_id", "amount", "deleted_at", "created_at", "loss_reason"]
OPEN = ["organization_id", "owner_id", "stage_id", "amount", "expected_close_date"]
OPEN_DEAL = "status = 'open' AND deleted_at IS NULL"
CREATED = ["organization_id", "created_at", "owner_id", "deleted_at", "stages_reached", "furthest_position", "ever_won"]


def upgrade() -> None:
    op.create_index("ix_quotas_metric", "quotas", ["organization_id", "metric", "period_start"])
    op.create_index("ix_opportunities_open", "opportunities", OPEN, sqlite_where=sa.text(OPEN_DEAL), postgresql_where=sa.text(OPEN_DEAL))
    op.drop_index("ix_opportunities_closed", table_name="opportunities")
    op.drop_index("ix_opportunities_created", table_name="opportunities")
    op.create_index("ix_opportunities_closed", "opportunities", CLOSED)
    op.create_index("ix_opportunities_created", "opportunities", CREATED)


def downgrade() -> None:
    op.drop_index("ix_opportunities_open", table_name="opportunities")
    op.drop_index("ix_quotas_metric", table_name="quotas")
    op.drop_index("ix_opportunities_created", table_name="opportunities")
    op.drop_index("ix_opportunities_closed", table_name="opportunities")
    op.create_index("ix_opportunities_closed", "opportunities", ["organization_id", "closed_at"])
    op.create_index("ix_opportunities_created", "opportunities", ["organization_id", "created_at"])
