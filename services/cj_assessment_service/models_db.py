"""SQLAlchemy models of the CJ Assessment Service. The schema itself is built by alembic.

Built-in grade scales live in code (``cj_core_logic.grade_scales.BUILTIN_SCALES``);
``grade_scales`` holds the custom ones created through the API.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Index, String, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ANCHOR_UNIQUE_CONSTRAINT = "uq_anchor_assignment_label_scale"


class Base(DeclarativeBase):
    pass


class _Timestamps:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class GradeScaleRow(_Timestamps, Base):
    __tablename__ = "grade_scales"

    scale_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    grades: Mapped[list[str]] = mapped_column(JSONB, nullable=False)  # low → high
    below_lowest: Mapped[str | None] = mapped_column(String(32), nullable=True)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")


class AssessmentAssignment(_Timestamps, Base):
    """The assessment context of an assignment: its grade scale, instructions, prompt, rubric."""

    __tablename__ = "assessment_assignments"

    assignment_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    course_id: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    grade_scale: Mapped[str] = mapped_column(String(64), nullable=False)
    instructions: Mapped[str] = mapped_column(Text, nullable=False)
    student_prompt: Mapped[str | None] = mapped_column(Text, nullable=True)
    judge_rubric: Mapped[str | None] = mapped_column(Text, nullable=True)


class AnchorEssayReference(_Timestamps, Base):
    """A pointer from an assignment's anchor (label + grade) to its text in the Content Service."""

    __tablename__ = "anchor_essay_references"
    __table_args__ = (
        UniqueConstraint("assignment_id", "anchor_label", "grade_scale", name=ANCHOR_UNIQUE_CONSTRAINT),
        Index("ix_anchor_essay_references_assignment_id", "assignment_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    assignment_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("assessment_assignments.assignment_id", ondelete="RESTRICT"), nullable=False
    )
    anchor_label: Mapped[str] = mapped_column(String(128), nullable=False)
    grade: Mapped[str] = mapped_column(String(32), nullable=False)
    grade_scale: Mapped[str] = mapped_column(String(64), nullable=False)
    text_storage_id: Mapped[str] = mapped_column(String(32), nullable=False)
