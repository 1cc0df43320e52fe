"""Operator console: who took a handoff, booking claims/attempts/outcomes, callback calls, rules.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BOOKING_COLUMNS = (
    sa.Column("claimed_by", sa.String(64), nullable=True),
    sa.Column("claimed_at", sa.DateTime, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime, nullable=True),
    sa.Column("outcome", sa.String(20), nullable=True),
    sa.Column("outcome_note", sa.Text, nullable=True),
    sa.Column("closed_at", sa.DateTime, nullable=True),
)
_HANDOFF_COLUMNS = (
    sa.Column("taken_by", sa.String(64), nullable=True),
    sa.Column("taken_at", sa.DateTime, nullable=True),
    sa.Column("ended_at", sa.DateTime, nullable=True),
)


def upgrade() -> None:
    with op.batch_alter_table("bookings") as batch:
        for column in _BOOKING_COLUMNS:
            batch.add_column(column)
    with op.batch_alter_table("handoffs") as batch:
        for column in _HANDOFF_COLUMNS:
            batch.add_column(column)
    # Handoffs written before this revision: "new" meant waiting for a person.
    op.execute("UPDATE handoffs SET status = 'waiting' WHERE status = 'new'")
    op.create_table(
        "callback_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("booking_id", sa.Integer, nullable=False, index=True),
        sa.Column("operator", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("call_sid", sa.String(64), nullable=True, index=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("dial_status", sa.String(20), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("ended_at", sa.DateTime, nullable=True),
    )
    op.create_table(
        "service_rules",
        sa.Column("key", sa.String(40), primary_key=True),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("service_rules")
    op.drop_table("callback_attempts")
    with op.batch_alter_table("handoffs") as batch:
        for column in _HANDOFF_COLUMNS:
            batch.drop_column(column.name)
    with op.batch_alter_table("bookings") as batch:
        for column in _BOOKING_COLUMNS:
            batch.drop_column(column.name)
