"""Assessment schema as the legacy service had it: grade scales, assignments, anchor references.

``anchor_essay_references`` deliberately has no unique key here: this is the shape of
the databases that the incident left with duplicate anchors (every registration
inserted a new row). 0002 removes those duplicates and adds the unique constraint.
Every key column is NOT NULL.

Revision ID: 0001_assessment_schema
Revises:
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_assessment_schema"
down_revision = None
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "grade_scales",
        sa.Column("scale_id", sa.String(64), primary_key=True),
        sa.Column("grades", postgresql.JSONB(), nullable=False),
        sa.Column("below_lowest", sa.String(32), nullable=True),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        *_timestamps(),
        sa.CheckConstraint("jsonb_typeof(grades) = 'array'", name="ck_grade_scales_grades_array"),
    )
    op.create_table(
        "assessment_assignments",
        sa.Column("assignment_id", sa.String(128), primary_key=True),
        sa.Column("course_id", sa.String(128), nullable=True),
        sa.Column("grade_scale", sa.String(64), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("student_prompt", sa.Text(), nullable=True),
        sa.Column("judge_rubric", sa.Text(), nullable=True),
        *_timestamps(),
    )
    op.create_index("ix_assessment_assignments_course_id", "assessment_assignments", ["course_id"])
    op.create_table(
        "anchor_essay_references",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column(
            "assignment_id",
            sa.String(128),
            sa.ForeignKey("assessment_assignments.assignment_id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("anchor_label", sa.String(128), nullable=False),
        sa.Column("grade", sa.String(32), nullable=False),
        sa.Column("grade_scale", sa.String(64), nullable=False),
        sa.Column("text_storage_id", sa.String(32), nullable=False),
        *_timestamps(),
    )
    op.create_index("ix_anchor_essay_references_assignment_id", "anchor_essay_references", ["assignment_id"])


def downgrade() -> None:
    op.drop_index("ix_anchor_essay_references_assignment_id", table_name="anchor_essay_references")
    op.drop_table("anchor_essay_references")
    op.drop_index("ix_assessment_assignments_course_id", table_name="assessment_assignments")
    op.drop_table("assessment_assignments")
    op.drop_table("grade_scales")
