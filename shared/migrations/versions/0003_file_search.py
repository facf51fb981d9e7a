"""file_search: vector store files' chunking, batches, and the chunk index (pgvector + full text)

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.config import get_settings

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("vector_store_file", sa.Column("chunking_strategy", postgresql.JSONB(), nullable=True))
    op.add_column("vector_store_file", sa.Column("attributes", postgresql.JSONB(), nullable=True))
    op.add_column("vector_store_file", sa.Column("batch_id", sa.String(), nullable=True))
    op.add_column("vector_store_file", sa.Column("attempt", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_vector_store_file_batch_id", "vector_store_file", ["batch_id"])
    op.create_table(
        "vector_store_file_batch",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False, unique=True),
        sa.Column("project_id", sa.String(), sa.ForeignKey("project.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("vector_store_id", sa.String(), sa.ForeignKey("vector_store.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    # Chunks belong to one file in one vector store: detaching the file or deleting either removes them (the
    # foreign key cascades), so search never sees a file it may no longer read.
    dim = get_settings().embeddings_dim
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute(f"""
        CREATE TABLE chunk (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            vector_store_id text NOT NULL,
            file_id text NOT NULL,
            position integer NOT NULL,
            text text NOT NULL,
            embedding vector({dim}) NOT NULL,
            tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
            UNIQUE (vector_store_id, file_id, position),
            FOREIGN KEY (vector_store_id, file_id) REFERENCES vector_store_file (vector_store_id, file_id)
                ON DELETE CASCADE
        )""")
    op.execute("CREATE INDEX ix_chunk_embedding ON chunk USING hnsw (embedding vector_cosine_ops)")
    op.execute("CREATE INDEX ix_chunk_tsv ON chunk USING gin (tsv)")


def downgrade() -> None:
    op.execute("DROP TABLE chunk")
    op.drop_table("vector_store_file_batch")
    op.drop_index("ix_vector_store_file_batch_id", "vector_store_file")
    for c in ("attempt", "batch_id", "attributes", "chunking_strategy"):
        op.drop_column("vector_store_file", c)
