"""Activity intelligence (``services.sentiment``, ``services.lexicon``, ``services.health``):
when each activity's sentiment was worked out, the words an organization's ratings taught it and
the evidence behind them, and each open deal's health by day.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-26 20:40:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0018'
down_revision: Union[str, Sequence[str], None] = '0017'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('lexicon_words',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('word', sa.String(length=40), nullable=False),
    sa.Column('shift', sa.Float(), nullable=False),
    sa.Column('weight', sa.Float(), nullable=False),
    sa.Column('activities', sa.Integer(), nullable=False),
    sa.Column('raters', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_lexicon_words_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lexicon_words')),
    sa.UniqueConstraint('organization_id', 'word', name=op.f('uq_lexicon_words_organization_id_word'))
    )
    op.create_table('deal_health',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('opportunity_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('health', sa.SmallInteger(), nullable=False),
    sa.Column('change', sa.SmallInteger(), nullable=True),
    sa.Column('factors', sa.JSON(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.CheckConstraint('health BETWEEN 0 AND 100', name=op.f('ck_deal_health_health')),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunities.id'], name=op.f('fk_deal_health_opportunity_id_opportunities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_deal_health_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deal_health')),
    sa.UniqueConstraint('opportunity_id', 'day', name=op.f('uq_deal_health_opportunity_id_day'))
    )
    with op.batch_alter_table('deal_health', schema=None) as batch_op:
        batch_op.create_index('ix_deal_health_day', ['organization_id', 'day', 'change'], unique=False)

    op.create_table('lexicon_evidence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('activity_id', sa.Integer(), nullable=False),
    sa.Column('rater_id', sa.Integer(), nullable=False),
    sa.Column('word', sa.String(length=40), nullable=False),
    sa.Column('direction', sa.SmallInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.CheckConstraint('direction IN (-1, 1)', name=op.f('ck_lexicon_evidence_direction')),
    sa.ForeignKeyConstraint(['activity_id'], ['activities.id'], name=op.f('fk_lexicon_evidence_activity_id_activities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_lexicon_evidence_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['rater_id'], ['users.id'], name=op.f('fk_lexicon_evidence_rater_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lexicon_evidence')),
    sa.UniqueConstraint('activity_id', 'word', name=op.f('uq_lexicon_evidence_activity_id_word'))
    )
    with op.batch_alter_table('lexicon_evidence', schema=None) as batch_op:
        batch_op.create_index('ix_lexicon_evidence_word', ['organization_id', 'word'], unique=False)

    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sentiment_scored_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lexicon_version', sa.Integer(), server_default='0', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.drop_column('lexicon_version')

    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_column('sentiment_scored_at')

    with op.batch_alter_table('lexicon_evidence', schema=None) as batch_op:
        batch_op.drop_index('ix_lexicon_evidence_word')

    op.drop_table('lexicon_evidence')
    with op.batch_alter_table('deal_health', schema=None) as batch_op:
        batch_op.drop_index('ix_deal_health_day')

    op.drop_table('deal_health')
    op.drop_table('lexicon_words')
