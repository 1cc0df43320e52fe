"""Matters, caller preferences, call sessions and identity-check failures.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "matters",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_no", sa.String(40), nullable=False, unique=True),
        sa.Column("service", sa.String(40), nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("id_salt", sa.String(32), nullable=False),
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("birth_year", sa.Integer, nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("imported_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_matters_phone", "matters", ["phone"])
    op.create_table(
        "caller_preferences",
        sa.Column("phone", sa.String(20), primary_key=True),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "call_sessions",
        sa.Column("call_sid", sa.String(64), primary_key=True),
        sa.Column("caller", sa.String(20), nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("turn", sa.Integer, nullable=False),
        sa.Column("last_response", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("ended_at", sa.DateTime, nullable=True),
    )
    op.create_table(
        "id_check_failures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_id_check_failures_phone_at", "id_check_failures", ["phone", "at"])


def downgrade() -> None:
    op.drop_table("id_check_failures")
    op.drop_table("call_sessions")
    op.drop_table("caller_preferences")
    op.drop_index("ix_matters_phone", "matters")
    op.drop_table("matters")
