"""NLU training loop: training set (intents, examples, vocabulary), change log, FAQ answer overrides,
review queue, training jobs

Revision ID: 0006_training
Revises: 0005
Create Date: 2026-11-25 10:10:03.718649
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('nlu_faq_answers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('faq_id', sa.String(length=100), nullable=False),
    sa.Column('intent', sa.String(length=100), nullable=False),
    sa.Column('answer', sa.JSON(), nullable=False),
    sa.Column('keywords', sa.JSON(), nullable=False),
    sa.Column('links', sa.JSON(), nullable=False),
    sa.Column('hidden', sa.Boolean(), nullable=False),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('nlu_faq_answers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_nlu_faq_answers_faq_id'), ['faq_id'], unique=True)
        batch_op.create_index(batch_op.f('ix_nlu_faq_answers_intent'), ['intent'], unique=False)

    op.create_table('nlu_intents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('rasa_metadata', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('nlu_intents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_nlu_intents_name'), ['name'], unique=True)

    op.create_table('nlu_review_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('group_key', sa.String(length=32), nullable=False),
    sa.Column('reasons', sa.String(length=100), nullable=False),
    sa.Column('predicted_intent', sa.String(length=100), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('model_version', sa.String(length=100), nullable=True),
    sa.Column('escalation_reason', sa.String(length=64), nullable=True),
    sa.Column('flagged_by', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=True),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('message_at', sa.DateTime(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id')
    )
    with op.batch_alter_table('nlu_review_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_nlu_review_items_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index('ix_nlu_review_items_status_at', ['status', 'message_at'], unique=False)
        batch_op.create_index('ix_nlu_review_items_status_group', ['status', 'group_key'], unique=False)

    op.create_table('nlu_training_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('actor_type', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('nlu_training_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_nlu_training_changes_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_nlu_training_changes_created_at'), ['created_at'], unique=False)

    op.create_table('nlu_training_jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('stage', sa.String(length=64), nullable=False),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('requested_by', sa.Integer(), nullable=True),
    sa.Column('data_revision', sa.Integer(), nullable=False),
    sa.Column('baseline_version', sa.String(length=100), nullable=True),
    sa.Column('candidate_version', sa.String(length=100), nullable=True),
    sa.Column('n_train', sa.Integer(), nullable=False),
    sa.Column('n_holdout', sa.Integer(), nullable=False),
    sa.Column('n_review', sa.Integer(), nullable=False),
    sa.Column('comparison', sa.JSON(), nullable=True),
    sa.Column('decision', sa.String(length=12), nullable=True),
    sa.Column('error', sa.String(length=2000), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('nlu_training_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_nlu_training_jobs_candidate_version'), ['candidate_version'], unique=False)
        batch_op.create_index(batch_op.f('ix_nlu_training_jobs_status'), ['status'], unique=False)

    op.create_table('nlu_training_state',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('nlu_vocabulary',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('entries', sa.JSON(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kind', 'name', name='uq_nlu_vocabulary_kind_name')
    )
    op.create_table('nlu_examples',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('intent_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('folded', sa.Text(), nullable=False),
    sa.Column('entities', sa.JSON(), nullable=False),
    sa.Column('rasa_metadata', sa.JSON(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('holdout', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['intent_id'], ['nlu_intents.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('nlu_examples', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_nlu_examples_holdout'), ['holdout'], unique=False)
        batch_op.create_index('ix_nlu_examples_intent_position', ['intent_id', 'position'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('nlu_examples', schema=None) as batch_op:
        batch_op.drop_index('ix_nlu_examples_intent_position')
        batch_op.drop_index(batch_op.f('ix_nlu_examples_holdout'))

    op.drop_table('nlu_examples')
    op.drop_table('nlu_vocabulary')
    op.drop_table('nlu_training_state')
    with op.batch_alter_table('nlu_training_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_nlu_training_jobs_status'))
        batch_op.drop_index(batch_op.f('ix_nlu_training_jobs_candidate_version'))

    op.drop_table('nlu_training_jobs')
    with op.batch_alter_table('nlu_training_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_nlu_training_changes_created_at'))
        batch_op.drop_index(batch_op.f('ix_nlu_training_changes_action'))

    op.drop_table('nlu_training_changes')
    with op.batch_alter_table('nlu_review_items', schema=None) as batch_op:
        batch_op.drop_index('ix_nlu_review_items_status_group')
        batch_op.drop_index('ix_nlu_review_items_status_at')
        batch_op.drop_index(batch_op.f('ix_nlu_review_items_conversation_id'))

    op.drop_table('nlu_review_items')
    with op.batch_alter_table('nlu_intents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_nlu_intents_name'))

    op.drop_table('nlu_intents')
    with op.batch_alter_table('nlu_faq_answers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_nlu_faq_answers_intent'))
        batch_op.drop_index(batch_op.f('ix_nlu_faq_answers_faq_id'))

    op.drop_table('nlu_faq_answers')
