"""initial schema: members, profiles, ledger (append-only), events, counters, outbox, offers, staff

Revision ID: 0001
Revises: 
Create Date: 2026-12-04 15:55:16.761090

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


APPEND_ONLY_MESSAGE = "ledger entries are append-only: add a new entry instead"

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER ledger_entries_no_{action.lower()} BEFORE {action} ON ledger_entries
    BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"""
    for action in ("UPDATE", "DELETE")
]

POSTGRES_TRIGGER = [
    f"""CREATE FUNCTION ledger_entries_append_only() RETURNS trigger AS $$
    BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}'; END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only()""",
]


def upgrade():
    op.create_table('counters',
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_counters'))
    )
    op.create_table('handoffs',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=40), nullable=False),
    sa.Column('payload_encrypted', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handoffs'))
    )
    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_handoffs_expires_at'), ['expires_at'], unique=False)

    op.create_table('members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=False),
    sa.Column('last_name', sa.String(length=100), nullable=False),
    sa.Column('contact_email', sa.String(length=320), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('terms_version', sa.String(length=40), nullable=False),
    sa.Column('terms_accepted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('data_processing_accepted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('marketing_opt_in', sa.Boolean(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('session_version', sa.Integer(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_members'))
    )
    op.create_table('provider_notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('network', sa.String(length=32), nullable=False),
    sa.Column('dedup_key', sa.String(length=255), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('outcome', sa.String(length=255), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_notifications')),
    sa.UniqueConstraint('network', 'dedup_key', name=op.f('uq_provider_notifications_network_dedup_key'))
    )
    op.create_table('staff_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.Enum('marketer', 'admin', name='staffrole', native_enum=False, length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_sign_in_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('session_version', sa.Integer(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_users')),
    sa.UniqueConstraint('email', name=op.f('uq_staff_users_email'))
    )
    op.create_table('events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('network', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('group_id', sa.String(length=64), nullable=True),
    sa.Column('object_id', sa.String(length=128), nullable=True),
    sa.Column('activity', sa.String(length=16), nullable=True),
    sa.Column('activity_id', sa.String(length=128), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_events_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events')),
    sa.UniqueConstraint('key', name=op.f('uq_events_key'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_member_id'), ['member_id'], unique=False)

    op.create_table('linked_profiles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('network', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('email_verified', sa.Boolean(), nullable=False),
    sa.Column('is_private_email', sa.Boolean(), nullable=False),
    sa.Column('email_forwarding_enabled', sa.Boolean(), nullable=False),
    sa.Column('token_encrypted', sa.LargeBinary(), nullable=True),
    sa.Column('linked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_sign_in_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('consent_revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_linked_profiles_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_linked_profiles')),
    sa.UniqueConstraint('network', 'subject', name=op.f('uq_linked_profiles_network_subject'))
    )
    with op.batch_alter_table('linked_profiles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_linked_profiles_member_id'), ['member_id'], unique=False)

    op.create_table('offer_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('offer_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_staff_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_staff_id'], ['staff_users.id'], name=op.f('fk_offer_versions_created_by_staff_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_offer_versions')),
    sa.UniqueConstraint('offer_id', 'version', name=op.f('uq_offer_versions_offer_id_version'))
    )
    with op.batch_alter_table('offer_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_offer_versions_offer_id'), ['offer_id'], unique=False)

    op.create_table('outbox_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.String(length=2000), nullable=False),
    sa.Column('offer_id', sa.String(length=64), nullable=False),
    sa.Column('offer_version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_outbox_messages_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_messages')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_outbox_messages_idempotency_key'))
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_messages_member_id'), ['member_id'], unique=False)

    op.create_table('ledger_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('accrual', 'deduction', 'reversal', 'expiry', 'adjustment', name='entrykind', native_enum=False, length=20), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('reverses_id', sa.Integer(), nullable=True),
    sa.Column('created_by_staff_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=True),
    sa.Column('offer_id', sa.String(length=64), nullable=True),
    sa.Column('offer_version', sa.Integer(), nullable=True),
    sa.Column('action_id', sa.String(length=64), nullable=True),
    sa.Column('fact_key', sa.String(length=255), nullable=True),
    sa.Column('cap_counter', sa.String(length=255), nullable=True),
    sa.Column('available_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('shortfall', sa.Integer(), server_default='0', nullable=False),
    sa.CheckConstraint("amount <> 0 OR shortfall > 0 OR kind = 'expiry'", name=op.f('ck_ledger_entries_nonzero_amount')),
    sa.ForeignKeyConstraint(['created_by_staff_id'], ['staff_users.id'], name=op.f('fk_ledger_entries_created_by_staff_id_staff_users')),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_ledger_entries_event_id_events')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_ledger_entries_member_id_members')),
    sa.ForeignKeyConstraint(['reverses_id'], ['ledger_entries.id'], name=op.f('fk_ledger_entries_reverses_id_ledger_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_ledger_entries_idempotency_key'))
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entries_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entries_event_id'), ['event_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entries_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entries_fact_key'), ['fact_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entries_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entries_reverses_id'), ['reverses_id'], unique=False)


    # The database itself refuses to change or delete a ledger entry, whatever the code does.
    statements = SQLITE_TRIGGERS if op.get_bind().dialect.name == "sqlite" else POSTGRES_TRIGGER
    for statement in statements:
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS ledger_entries_no_update")
        op.execute("DROP TRIGGER IF EXISTS ledger_entries_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS ledger_entries_append_only ON ledger_entries")
        op.execute("DROP FUNCTION IF EXISTS ledger_entries_append_only()")
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entries_reverses_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_entries_member_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_entries_fact_key'))
        batch_op.drop_index(batch_op.f('ix_ledger_entries_expires_at'))
        batch_op.drop_index(batch_op.f('ix_ledger_entries_event_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_entries_created_at'))

    op.drop_table('ledger_entries')
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_messages_member_id'))

    op.drop_table('outbox_messages')
    with op.batch_alter_table('offer_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_offer_versions_offer_id'))

    op.drop_table('offer_versions')
    with op.batch_alter_table('linked_profiles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_linked_profiles_member_id'))

    op.drop_table('linked_profiles')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_member_id'))

    op.drop_table('events')
    op.drop_table('staff_users')
    op.drop_table('provider_notifications')
    op.drop_table('members')
    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_handoffs_expires_at'))

    op.drop_table('handoffs')
    op.drop_table('counters')
