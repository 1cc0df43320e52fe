"""Prompt recordings made in the console's prompt studio: every take kept, one in use per prompt.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prompt_recordings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("prompt_id", sa.String(80), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("audio", sa.LargeBinary, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("level_db", sa.Float, nullable=False),
        sa.Column("source_format", sa.String(24), nullable=False),
        sa.Column("source_name", sa.String(200), nullable=False),
        sa.Column("warnings", sa.JSON, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("language", "prompt_id", "version", name="uq_prompt_recording_version"),
    )
    op.create_table(
        "prompt_recordings_in_use",
        sa.Column("language", sa.String(8), primary_key=True),
        sa.Column("prompt_id", sa.String(80), primary_key=True),
        sa.Column("recording_id", sa.Integer, sa.ForeignKey("prompt_recordings.id"), nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=False),
        sa.Column("changed_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("prompt_recordings_in_use")
    op.drop_table("prompt_recordings")
