"""Doors shut on the newer surfaces: the event list receivers catch up from (``change_events``),
what each intake post said (``lead_arrivals``), a lead source's key rotation, idempotency keys
expired by age; and the webhook attempts' old error texts (which told an open port from a
closed one) kept as a category only.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 11:40:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0023'
down_revision: Union[str, Sequence[str], None] = '0022'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('change_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('record_type', sa.String(length=20), nullable=False),
    sa.Column('record_id', sa.BigInteger(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_change_events_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_change_events'))
    )
    with op.batch_alter_table('change_events', schema=None) as batch_op:
        batch_op.create_index('ix_change_events_created', ['created_at'], unique=False)
        batch_op.create_index('ix_change_events_org', ['organization_id', 'version', 'id'], unique=False)

    op.create_table('lead_arrivals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lead_id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('company', sa.String(length=200), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_lead_arrivals_lead_id_leads'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_lead_arrivals_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_id'], ['lead_sources.id'], name=op.f('fk_lead_arrivals_source_id_lead_sources'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_arrivals'))
    )
    with op.batch_alter_table('lead_arrivals', schema=None) as batch_op:
        batch_op.create_index('ix_lead_arrivals_lead', ['lead_id', 'received_at'], unique=False)

    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_keys_created_at'), ['created_at'], unique=False)

    with op.batch_alter_table('lead_sources', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_rotated_at', sa.DateTime(timezone=True), nullable=True))

    # An attempt's outcome as a category (``services.integration.outbound.outcome``): an error status keeps its
    # "answered N"; any other text an exception wrote becomes "failed".
    op.execute("UPDATE webhook_attempts SET error = 'answered ' || CAST(status_code AS VARCHAR(8)) "
               "WHERE error IS NOT NULL AND status_code IS NOT NULL")
    op.execute("UPDATE webhook_attempts SET error = 'failed' WHERE error IS NOT NULL AND status_code IS NULL")


def downgrade() -> None:
    with op.batch_alter_table('lead_sources', schema=None) as batch_op:
        batch_op.drop_column('key_rotated_at')

    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_keys_created_at'))

    with op.batch_alter_table('lead_arrivals', schema=None) as batch_op:
        batch_op.drop_index('ix_lead_arrivals_lead')

    op.drop_table('lead_arrivals')
    with op.batch_alter_table('change_events', schema=None) as batch_op:
        batch_op.drop_index('ix_change_events_org')
        batch_op.drop_index('ix_change_events_created')

    op.drop_table('change_events')
