"""NLU models in the database: every trained version packed as a tar.gz, and the active pointer, so
that replicas on different hosts answer with the same model

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 05:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('nlu_models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('artefact', sa.LargeBinary(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('checksum', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('nlu_models', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_nlu_models_version'), ['version'], unique=True)

    op.create_table('nlu_active_model',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.String(length=100), nullable=False),
    sa.Column('activated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['version'], ['nlu_models.version'], ),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('nlu_active_model')
    with op.batch_alter_table('nlu_models', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_nlu_models_version'))
    op.drop_table('nlu_models')
