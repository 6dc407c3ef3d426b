"""Create stored_content: durable blobs in PostgreSQL, de-duplicated by sha256 + type.

Revision ID: 0001_create_stored_content
Revises:
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_create_stored_content"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stored_content",
        sa.Column("content_id", sa.String(32), primary_key=True),
        sa.Column("content_data", sa.LargeBinary(), nullable=False),
        sa.Column("content_size", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("sha256", sa.CHAR(64), nullable=False),
        sa.Column("metadata", postgresql.JSONB(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("correlation_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.UniqueConstraint("sha256", "content_type", name="uq_stored_content_sha256_type"),
        sa.CheckConstraint("content_size = octet_length(content_data)", name="ck_stored_content_size_matches"),
        sa.CheckConstraint("content_id ~ '^[0-9a-f]{32}$'", name="ck_stored_content_id_format"),
    )
    op.create_index("ix_stored_content_created_at", "stored_content", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_stored_content_created_at", table_name="stored_content")
    op.drop_table("stored_content")
