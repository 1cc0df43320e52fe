"""Callback bookings, operator handoff records, call duration.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bookings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("caller", sa.String(20), nullable=False),
        sa.Column("callback_number", sa.String(20), nullable=False),
        sa.Column("slot_start", sa.DateTime, nullable=False),
        sa.Column("slot_end", sa.DateTime, nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("cancelled_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_bookings_caller", "bookings", ["caller"])
    op.create_index("ix_bookings_slot_start", "bookings", ["slot_start"])
    op.create_table(
        "handoffs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("caller", sa.String(20), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("verified", sa.Boolean, nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("story", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_handoffs_call_sid", "handoffs", ["call_sid"])
    with op.batch_alter_table("call_sessions") as batch:
        batch.add_column(sa.Column("duration_seconds", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call_sessions") as batch:
        batch.drop_column("duration_seconds")
    op.drop_table("handoffs")
    op.drop_table("bookings")
