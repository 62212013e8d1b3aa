"""A real team starts: invitations, team moves on a date, retired stages, imports (their runs,
what each changed, saved mappings), a deal's external id, and the directories whose single
sign-on opens an organization.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 15:24:44
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0024'
down_revision: Union[str, Sequence[str], None] = '0023'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('import_mappings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('headers_key', sa.String(length=64), nullable=False),
    sa.Column('mapping', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_import_mappings_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_mappings')),
    sa.UniqueConstraint('organization_id', 'kind', 'headers_key', name=op.f('uq_import_mappings_organization_id_kind_headers_key'))
    )
    op.create_table('import_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=True),
    sa.Column('mapping', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('rows_total', sa.Integer(), nullable=False),
    sa.Column('rows_done', sa.Integer(), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('beat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('undone_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_import_runs_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_import_runs_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_runs'))
    )
    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.create_index('ix_import_runs_org', ['organization_id', 'created_at'], unique=False)

    op.create_table('invitations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('invited_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("role IN ('rep', 'manager', 'admin')", name=op.f('ck_invitations_role')),
    sa.CheckConstraint('email = lower(trim(email))', name=op.f('ck_invitations_email_normalised')),
    sa.ForeignKeyConstraint(['invited_by_id'], ['users.id'], name=op.f('fk_invitations_invited_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_invitations_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_invitations_team_id_teams'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_invitations_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitations')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_invitations_token_hash'))
    )
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.create_index('ix_invitations_email', ['email', 'accepted_at'], unique=False)

    op.create_table('team_moves',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('from_team_id', sa.Integer(), nullable=True),
    sa.Column('to_team_id', sa.Integer(), nullable=True),
    sa.Column('on_day', sa.Date(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['from_team_id'], ['teams.id'], name=op.f('fk_team_moves_from_team_id_teams'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_team_moves_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['to_team_id'], ['teams.id'], name=op.f('fk_team_moves_to_team_id_teams'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_team_moves_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team_moves'))
    )
    with op.batch_alter_table('team_moves', schema=None) as batch_op:
        batch_op.create_index('ix_team_moves_org', ['organization_id', 'on_day'], unique=False)

    op.create_table('import_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=False),
    sa.Column('record_type', sa.String(length=20), nullable=False),
    sa.Column('record_id', sa.BigInteger(), nullable=True),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('made', sa.JSON(), nullable=True),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['import_id'], ['import_runs.id'], name=op.f('fk_import_changes_import_id_import_runs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_import_changes_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_changes'))
    )
    with op.batch_alter_table('import_changes', schema=None) as batch_op:
        batch_op.create_index('ix_import_changes_run', ['import_id', 'record_type'], unique=False)

    # Columns added and unique indexes made in place: no table is rebuilt (on SQLite a rebuilt
    # ``organizations`` would be dropped first, and the drop cascade to every row naming it).
    op.add_column('opportunities', sa.Column('external_id', sa.String(length=255), nullable=True))
    op.create_index('uq_opportunities_external_id', 'opportunities', ['organization_id', 'external_id'], unique=True)
    op.add_column('organizations', sa.Column('microsoft_tenant', sa.String(length=64), nullable=True))
    op.add_column('organizations', sa.Column('google_workspace', sa.String(length=253), nullable=True))
    op.add_column('organizations', sa.Column('rebuilding_since', sa.DateTime(timezone=True), nullable=True))
    op.create_index('uq_organizations_google_workspace', 'organizations', ['google_workspace'], unique=True)
    op.create_index('uq_organizations_microsoft_tenant', 'organizations', ['microsoft_tenant'], unique=True)
    op.add_column('stages', sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True))



def downgrade() -> None:
    op.drop_column('stages', 'retired_at')
    op.drop_index('uq_organizations_microsoft_tenant', table_name='organizations')
    op.drop_index('uq_organizations_google_workspace', table_name='organizations')
    op.drop_column('organizations', 'rebuilding_since')
    op.drop_column('organizations', 'google_workspace')
    op.drop_column('organizations', 'microsoft_tenant')
    op.drop_index('uq_opportunities_external_id', table_name='opportunities')
    op.drop_column('opportunities', 'external_id')

    with op.batch_alter_table('import_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_import_changes_run')

    op.drop_table('import_changes')
    with op.batch_alter_table('team_moves', schema=None) as batch_op:
        batch_op.drop_index('ix_team_moves_org')

    op.drop_table('team_moves')
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_index('ix_invitations_email')

    op.drop_table('invitations')
    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_import_runs_org')

    op.drop_table('import_runs')
    op.drop_table('import_mappings')
