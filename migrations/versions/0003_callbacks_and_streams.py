"""VK callbacks (confirmation, secret, activity marks); pushed streams' cursor and threads

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 18:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tracked_groups") as batch:
        batch.add_column(sa.Column("cursor", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("callback_confirmation", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("callback_secret_encrypted", sa.LargeBinary(), nullable=True))
        batch.add_column(
            sa.Column("change_seq", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("scanned_posts", sa.JSON(), nullable=True))
    op.create_table(
        "activity_marks",
        sa.Column("tracked_group_id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by_callback", sa.Boolean(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tracked_group_id"],
            ["tracked_groups.id"],
            name=op.f("fk_activity_marks_tracked_group_id_tracked_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tracked_group_id",
            "post_id",
            "kind",
            "subject",
            "item_id",
            name=op.f("pk_activity_marks"),
        ),
    )
    op.create_table(
        "discussion_threads",
        sa.Column("tracked_group_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("post_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["tracked_group_id"],
            ["tracked_groups.id"],
            name=op.f("fk_discussion_threads_tracked_group_id_tracked_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tracked_group_id", "chat_id", "message_id", name=op.f("pk_discussion_threads")
        ),
    )


def downgrade():
    op.drop_table("discussion_threads")
    op.drop_table("activity_marks")
    with op.batch_alter_table("tracked_groups") as batch:
        batch.drop_column("scanned_posts")
        batch.drop_column("change_seq")
        batch.drop_column("callback_secret_encrypted")
        batch.drop_column("callback_confirmation")
        batch.drop_column("cursor")
