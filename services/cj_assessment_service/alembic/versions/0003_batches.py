"""Batches, their essays and their comparisons: the durable state of the CJ worker.

``cj_comparisons`` is unique on (batch, round, slot), so a comparison that a restarted
worker judges again overwrites nothing and is never counted twice; the counters on
``cj_batches`` can never exceed the budget (check constraint).

Revision ID: 0003_batches
Revises: 0002_unique_anchor_key
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003_batches"
down_revision = "0002_unique_anchor_key"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cj_batches",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("batch_id", sa.String(128), nullable=False),
        sa.Column(
            "assignment_id",
            sa.String(128),
            sa.ForeignKey("assessment_assignments.assignment_id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), server_default="pending", nullable=False),
        sa.Column("request_fingerprint", sa.CHAR(64), nullable=False),
        sa.Column("max_comparisons", sa.Integer(), nullable=False),
        sa.Column("judge_override", postgresql.JSONB(), nullable=True),
        sa.Column("judge_settings", postgresql.JSONB(), nullable=False),
        sa.Column("judge_info", postgresql.JSONB(), nullable=True),
        sa.Column("metadata", postgresql.JSONB(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("comparisons_done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("comparisons_failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("current_round", sa.Integer(), server_default="0", nullable=False),
        sa.Column("stop_reason", sa.String(32), nullable=True),
        sa.Column("error", postgresql.JSONB(), nullable=True),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("results", postgresql.JSONB(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("batch_id", name="cj_batches_batch_id_key"),
        sa.CheckConstraint(
            "status IN ('pending','preparing','comparing','scoring','completed','failed','cancelled')",
            name="ck_cj_batches_status",
        ),
        sa.CheckConstraint("max_comparisons >= 1", name="ck_cj_batches_budget_positive"),
        sa.CheckConstraint(
            "comparisons_done >= 0 AND comparisons_failed >= 0", name="ck_cj_batches_counters_non_negative"
        ),
        sa.CheckConstraint("comparisons_done + comparisons_failed <= max_comparisons", name="ck_cj_batches_budget"),
    )
    op.create_index("ix_cj_batches_assignment_id", "cj_batches", ["assignment_id"])
    op.create_index("ix_cj_batches_created_at", "cj_batches", ["created_at"])
    # The workers' claim query scans active batches only.
    op.create_index(
        "ix_cj_batches_claimable",
        "cj_batches",
        ["lease_expires_at"],
        postgresql_where=sa.text("status IN ('pending','preparing','comparing','scoring')"),
    )

    op.create_table(
        "cj_batch_essays",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("batch_pk", sa.BigInteger(), sa.ForeignKey("cj_batches.id", ondelete="CASCADE"), nullable=False),
        sa.Column("item_index", sa.Integer(), nullable=False),
        sa.Column("essay_ref", sa.String(128), nullable=False),
        sa.Column("is_anchor", sa.Boolean(), nullable=False),
        sa.Column("anchor_id", sa.BigInteger(), nullable=True),
        sa.Column("anchor_grade", sa.String(32), nullable=True),
        sa.Column("storage_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("batch_pk", "item_index", name="uq_cj_batch_essays_item"),
        sa.UniqueConstraint("batch_pk", "is_anchor", "essay_ref", name="uq_cj_batch_essays_ref"),
        sa.CheckConstraint("item_index >= 0", name="ck_cj_batch_essays_index"),
        sa.CheckConstraint("is_anchor = (anchor_grade IS NOT NULL)", name="ck_cj_batch_essays_anchor_grade"),
    )

    op.create_table(
        "cj_comparisons",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("batch_pk", sa.BigInteger(), sa.ForeignKey("cj_batches.id", ondelete="CASCADE"), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("first_item", sa.Integer(), nullable=False),
        sa.Column("second_item", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(8), server_default="queued", nullable=False),
        sa.Column("winner_item", sa.Integer(), nullable=True),
        sa.Column("winner_position", sa.String(6), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("justification", sa.Text(), nullable=True),
        sa.Column("judge_name", sa.String(32), nullable=True),
        sa.Column("judge_model", sa.String(256), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("error", postgresql.JSONB(), nullable=True),
        sa.Column("raw_replies", postgresql.JSONB(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("judged_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("batch_pk", "round", "slot", name="uq_cj_comparisons_slot"),
        sa.CheckConstraint("status IN ('queued','done','failed')", name="ck_cj_comparisons_status"),
        sa.CheckConstraint("first_item <> second_item", name="ck_cj_comparisons_distinct"),
        sa.CheckConstraint("(status = 'done') = (winner_item IS NOT NULL)", name="ck_cj_comparisons_winner_when_done"),
        sa.CheckConstraint(
            "winner_item IS NULL OR winner_item IN (first_item, second_item)", name="ck_cj_comparisons_winner_shown"
        ),
        sa.CheckConstraint(
            "winner_position IS NULL OR winner_position IN ('first','second')", name="ck_cj_comparisons_position"
        ),
    )
    op.create_index("ix_cj_comparisons_batch_status", "cj_comparisons", ["batch_pk", "status"])


def downgrade() -> None:
    op.drop_index("ix_cj_comparisons_batch_status", table_name="cj_comparisons")
    op.drop_table("cj_comparisons")
    op.drop_table("cj_batch_essays")
    op.drop_index("ix_cj_batches_claimable", table_name="cj_batches")
    op.drop_index("ix_cj_batches_created_at", table_name="cj_batches")
    op.drop_index("ix_cj_batches_assignment_id", table_name="cj_batches")
    op.drop_table("cj_batches")
