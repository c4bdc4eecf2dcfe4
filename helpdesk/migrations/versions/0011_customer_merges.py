"""Customers: a record of every merge (what moved, which fields were copied), so that a merge can be split

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 00:10:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('customer_merges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('primary_id', sa.Integer(), nullable=False),
    sa.Column('merged_id', sa.Integer(), nullable=False),
    sa.Column('moved', sa.JSON(), nullable=False),
    sa.Column('copied', sa.JSON(), nullable=False),
    sa.Column('actor_type', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('split_at', sa.DateTime(), nullable=True),
    sa.Column('split_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['merged_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['primary_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('customer_merges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_merges_merged_id'), ['merged_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_merges_primary_id'), ['primary_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('customer_merges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_merges_primary_id'))
        batch_op.drop_index(batch_op.f('ix_customer_merges_merged_id'))
    op.drop_table('customer_merges')
