"""Console log-in throttling: counters per hashed account name and per source address replace
the per-account lock-out columns (anyone could lock an operator out with them).

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_throttles",
        sa.Column("key", sa.String(72), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("wait_until", sa.DateTime, nullable=True),
        sa.Column("refused", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_at", sa.DateTime, nullable=False, index=True),
    )
    # A lock-out running at upgrade time ends: the new counters start empty.
    with op.batch_alter_table("operators") as batch:
        batch.drop_column("locked_until")
        batch.drop_column("failed_logins")


def downgrade() -> None:
    with op.batch_alter_table("operators") as batch:
        batch.add_column(sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("locked_until", sa.DateTime, nullable=True))
    op.drop_table("login_throttles")
