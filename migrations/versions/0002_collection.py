"""tracked groups, snapshots, collection runs, leases

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 16:52:26.506639

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('leases',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_leases'))
    )
    op.create_table('tracked_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('network', sa.String(length=32), nullable=False),
    sa.Column('group_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('token_encrypted', sa.LargeBinary(), nullable=False),
    sa.Column('posts_to_scan', sa.Integer(), nullable=False),
    sa.Column('interval_seconds', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('baseline_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tracked_groups')),
    sa.UniqueConstraint('network', 'group_id', name=op.f('uq_tracked_groups_network_group_id'))
    )
    op.create_table('activity_snapshots',
    sa.Column('tracked_group_id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('item_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['tracked_group_id'], ['tracked_groups.id'], name=op.f('fk_activity_snapshots_tracked_group_id_tracked_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tracked_group_id', 'post_id', 'kind', 'subject', 'item_id', name=op.f('pk_activity_snapshots'))
    )
    with op.batch_alter_table('activity_snapshots', schema=None) as batch_op:
        batch_op.create_index('ix_activity_snapshots_post', ['tracked_group_id', 'post_id'], unique=False)

    op.create_table('collection_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tracked_group_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('phase', sa.String(length=64), nullable=False),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('requests', sa.Integer(), nullable=False),
    sa.Column('items_read', sa.Integer(), nullable=False),
    sa.Column('events_found', sa.Integer(), nullable=False),
    sa.Column('errors', sa.Integer(), nullable=False),
    sa.Column('error_log', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['tracked_group_id'], ['tracked_groups.id'], name=op.f('fk_collection_runs_tracked_group_id_tracked_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_collection_runs'))
    )
    with op.batch_alter_table('collection_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_collection_runs_tracked_group_id'), ['tracked_group_id'], unique=False)

    op.create_table('member_snapshots',
    sa.Column('tracked_group_id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['tracked_group_id'], ['tracked_groups.id'], name=op.f('fk_member_snapshots_tracked_group_id_tracked_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tracked_group_id', 'subject', name=op.f('pk_member_snapshots'))
    )
    op.create_table('post_snapshots',
    sa.Column('tracked_group_id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.String(length=64), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tracked_group_id'], ['tracked_groups.id'], name=op.f('fk_post_snapshots_tracked_group_id_tracked_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tracked_group_id', 'post_id', name=op.f('pk_post_snapshots'))
    )


def downgrade():
    op.drop_table('post_snapshots')
    op.drop_table('member_snapshots')
    with op.batch_alter_table('collection_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_collection_runs_tracked_group_id'))

    op.drop_table('collection_runs')
    with op.batch_alter_table('activity_snapshots', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_snapshots_post')

    op.drop_table('activity_snapshots')
    op.drop_table('tracked_groups')
    op.drop_table('leases')
