"""segment: saved customer segments (a name and a definition of conditions)

Revision ID: 0023_segments_table
Revises: 0022_customer_purchases
Create Date: 2026-12-05 16:45:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0023_segments_table'
down_revision = '0022_customer_purchases'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'segment',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('description', sa.String(length=2000), nullable=True),
        sa.Column('definition', sa.JSON(), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['created_by'], ['agents.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('segment')
