"""Product questions from the catalog: a product's price and units in stock (both optional)

Revision ID: 0020_product_price_stock
Revises: 0019_product_care_schedule
Create Date: 2026-12-05 13:50:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0020_product_price_stock'
down_revision = '0019_product_care_schedule'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('products') as batch:
        batch.add_column(sa.Column('price_vnd', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('stock', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('products') as batch:
        batch.drop_column('stock')
        batch.drop_column('price_vnd')
