"""SQLAlchemy models of batches, their essays and their comparisons (schema built by alembic 0003).

A batch is the durable state of one CJ run: the worker reads and writes nothing else,
so any process can take over a batch whose lease expired.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CHAR,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from services.cj_assessment_service.models_db import Base

BATCH_STATUSES = ("pending", "preparing", "comparing", "scoring", "completed", "failed", "cancelled")
ACTIVE_BATCH_STATUSES = ("pending", "preparing", "comparing", "scoring")
COMPARISON_STATUSES = ("queued", "done", "failed")


class CJBatch(Base):
    __tablename__ = "cj_batches"
    __table_args__ = (
        UniqueConstraint("batch_id", name="cj_batches_batch_id_key"),
        CheckConstraint(
            "status IN ('pending','preparing','comparing','scoring','completed','failed','cancelled')",
            name="ck_cj_batches_status",
        ),
        CheckConstraint("max_comparisons >= 1", name="ck_cj_batches_budget_positive"),
        CheckConstraint(
            "comparisons_done >= 0 AND comparisons_failed >= 0", name="ck_cj_batches_counters_non_negative"
        ),
        CheckConstraint("comparisons_done + comparisons_failed <= max_comparisons", name="ck_cj_batches_budget"),
        Index("ix_cj_batches_assignment_id", "assignment_id"),
        Index("ix_cj_batches_created_at", "created_at"),
        Index(
            "ix_cj_batches_claimable",
            "lease_expires_at",
            postgresql_where=text("status IN ('pending','preparing','comparing','scoring')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(128), nullable=False)
    assignment_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("assessment_assignments.assignment_id", ondelete="RESTRICT"), nullable=False
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="pending")
    request_fingerprint: Mapped[str] = mapped_column(CHAR(64), nullable=False)
    max_comparisons: Mapped[int] = mapped_column(Integer, nullable=False)
    judge_override: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    judge_settings: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)  # public: no secrets
    judge_info: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)  # name, model, is_assessor
    batch_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, nullable=False)
    seed: Mapped[int] = mapped_column(BigInteger, nullable=False)
    comparisons_done: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    comparisons_failed: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    current_round: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    stop_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    results: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class CJBatchEssay(Base):
    """One item of a batch: a student essay (from submission) or an anchor (added at preparation)."""

    __tablename__ = "cj_batch_essays"
    __table_args__ = (
        UniqueConstraint("batch_pk", "item_index", name="uq_cj_batch_essays_item"),
        UniqueConstraint("batch_pk", "is_anchor", "essay_ref", name="uq_cj_batch_essays_ref"),
        CheckConstraint("item_index >= 0", name="ck_cj_batch_essays_index"),
        CheckConstraint("is_anchor = (anchor_grade IS NOT NULL)", name="ck_cj_batch_essays_anchor_grade"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    batch_pk: Mapped[int] = mapped_column(BigInteger, ForeignKey("cj_batches.id", ondelete="CASCADE"), nullable=False)
    item_index: Mapped[int] = mapped_column(Integer, nullable=False)
    essay_ref: Mapped[str] = mapped_column(String(128), nullable=False)  # client essay_id or anchor label
    is_anchor: Mapped[bool] = mapped_column(Boolean, nullable=False)
    anchor_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # a snapshot: anchors may be pruned
    anchor_grade: Mapped[str | None] = mapped_column(String(32), nullable=True)
    storage_id: Mapped[str] = mapped_column(String(32), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class CJComparison(Base):
    """One judgement slot. (batch, round, slot) is unique, so nothing can be counted twice."""

    __tablename__ = "cj_comparisons"
    __table_args__ = (
        UniqueConstraint("batch_pk", "round", "slot", name="uq_cj_comparisons_slot"),
        CheckConstraint("status IN ('queued','done','failed')", name="ck_cj_comparisons_status"),
        CheckConstraint("first_item <> second_item", name="ck_cj_comparisons_distinct"),
        CheckConstraint(
            "(status = 'done') = (winner_item IS NOT NULL)", name="ck_cj_comparisons_winner_when_done"
        ),
        CheckConstraint(
            "winner_item IS NULL OR winner_item IN (first_item, second_item)", name="ck_cj_comparisons_winner_shown"
        ),
        CheckConstraint(
            "winner_position IS NULL OR winner_position IN ('first','second')", name="ck_cj_comparisons_position"
        ),
        Index("ix_cj_comparisons_batch_status", "batch_pk", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    batch_pk: Mapped[int] = mapped_column(BigInteger, ForeignKey("cj_batches.id", ondelete="CASCADE"), nullable=False)
    round: Mapped[int] = mapped_column(Integer, nullable=False)
    slot: Mapped[int] = mapped_column(Integer, nullable=False)
    first_item: Mapped[int] = mapped_column(Integer, nullable=False)  # shown as "Essay A"
    second_item: Mapped[int] = mapped_column(Integer, nullable=False)  # shown as "Essay B"
    status: Mapped[str] = mapped_column(String(8), nullable=False, server_default="queued")
    winner_item: Mapped[int | None] = mapped_column(Integer, nullable=True)
    winner_position: Mapped[str | None] = mapped_column(String(6), nullable=True)  # "first" | "second"
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    justification: Mapped[str | None] = mapped_column(Text, nullable=True)
    judge_name: Mapped[str | None] = mapped_column(String(32), nullable=True)
    judge_model: Mapped[str | None] = mapped_column(String(256), nullable=True)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    raw_replies: Mapped[list[str] | None] = mapped_column(JSONB, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    judged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
