"""runs remember the request that created them, so that a client's retry of it gets the same run

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("run", sa.Column("request_hash", sa.String(), nullable=True))


def downgrade() -> None:
    op.drop_column("run", "request_hash")
