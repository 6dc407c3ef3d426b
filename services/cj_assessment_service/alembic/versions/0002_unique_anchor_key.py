"""Remove duplicate anchor references (keep the newest), then make the anchor key unique.

The incident: registration always inserted, so five uploads of the same 12 anchors
left 60 rows. Per (assignment_id, anchor_label, grade_scale) this keeps the newest row
— latest updated_at, then latest created_at, then highest id — deletes the others and
adds ``uq_anchor_assignment_label_scale`` so that registration can upsert on it.
The table is locked for the whole migration, so no duplicate can slip in between the
clean-up and the constraint. The deleted rows cannot be restored by the downgrade.

Revision ID: 0002_unique_anchor_key
Revises: 0001_assessment_schema
Create Date: 2026-12-03
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0002_unique_anchor_key"
down_revision = "0001_assessment_schema"
branch_labels = None
depends_on = None

logger = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    connection = op.get_bind()
    connection.execute(sa.text("LOCK TABLE anchor_essay_references IN ACCESS EXCLUSIVE MODE"))
    # Legacy rows without a label: the label defaults to the grade (as registration does now).
    connection.execute(
        sa.text("UPDATE anchor_essay_references SET anchor_label = grade WHERE btrim(anchor_label) = ''")
    )
    deleted = connection.execute(
        sa.text(
            """
            DELETE FROM anchor_essay_references AS a
            USING (
                SELECT id,
                       row_number() OVER (
                           PARTITION BY assignment_id, anchor_label, grade_scale
                           ORDER BY updated_at DESC, created_at DESC, id DESC
                       ) AS position
                FROM anchor_essay_references
            ) AS ranked
            WHERE a.id = ranked.id AND ranked.position > 1
            """
        )
    ).rowcount
    logger.info("0002_unique_anchor_key: removed %s duplicate anchor reference(s)", deleted)
    op.create_unique_constraint(
        "uq_anchor_assignment_label_scale",
        "anchor_essay_references",
        ["assignment_id", "anchor_label", "grade_scale"],
    )


def downgrade() -> None:
    op.drop_constraint("uq_anchor_assignment_label_scale", "anchor_essay_references", type_="unique")
