"""PostgreSQL repositories of grade scales, assignments and anchor references.

Each method opens its own session and commits explicitly before it returns; an error
raised inside leaves nothing behind (the session rolls back when it closes). Database
outages become 503 envelopes through ``database_errors_as_unavailable``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, delete, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from huleedu_service_libs.database import database_errors_as_unavailable
from huleedu_service_libs.errors import ConflictError, NotFoundError
from services.cj_assessment_service.cj_core_logic.grade_scales import GradeScale
from services.cj_assessment_service.models_db import (
    ANCHOR_UNIQUE_CONSTRAINT,
    AnchorEssayReference,
    AssessmentAssignment,
    GradeScaleRow,
)
from services.cj_assessment_service.protocols import (
    AnchorReference,
    AnchorUpsert,
    Assignment,
    AssignmentDraft,
    StoredGradeScale,
    WriteStatus,
)


class _Repository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def ping(self) -> None:
        async with database_errors_as_unavailable(), self._engine.connect() as connection:
            await connection.execute(text("SELECT 1"))


# --- grade scales ---------------------------------------------------------------------

_SCALE_COLUMNS = (
    GradeScaleRow.scale_id,
    GradeScaleRow.grades,
    GradeScaleRow.below_lowest,
    GradeScaleRow.description,
    GradeScaleRow.created_at,
    GradeScaleRow.updated_at,
)


def _stored_scale(row: Row[Any]) -> StoredGradeScale:
    scale = GradeScale(row.scale_id, tuple(row.grades), row.below_lowest, row.description)
    return StoredGradeScale(scale=scale, created_at=row.created_at, updated_at=row.updated_at)


class PostgresGradeScaleRepository(_Repository):
    async def get(self, scale_id: str) -> StoredGradeScale | None:
        async with database_errors_as_unavailable(), self._sessions() as session:
            row = (await session.execute(select(*_SCALE_COLUMNS).where(GradeScaleRow.scale_id == scale_id))).one_or_none()
        return _stored_scale(row) if row is not None else None

    async def list(self) -> list[StoredGradeScale]:
        async with database_errors_as_unavailable(), self._sessions() as session:
            rows = (await session.execute(select(*_SCALE_COLUMNS).order_by(GradeScaleRow.scale_id))).all()
        return [_stored_scale(row) for row in rows]

    async def save(self, scale: GradeScale) -> tuple[StoredGradeScale, WriteStatus]:
        values = {"grades": list(scale.grades), "below_lowest": scale.below_lowest, "description": scale.description}
        async with database_errors_as_unavailable(), self._sessions() as session:
            inserted = (
                await session.execute(
                    insert(GradeScaleRow)
                    .values(scale_id=scale.scale_id, **values)
                    .on_conflict_do_nothing(index_elements=[GradeScaleRow.scale_id])
                    .returning(*_SCALE_COLUMNS)
                )
            ).one_or_none()
            if inserted is not None:
                await session.commit()
                return _stored_scale(inserted), "created"
            # The row exists: lock it, so that anchor registrations (which hold it FOR SHARE)
            # and other saves wait while grades that anchors carry are checked.
            current = (
                await session.execute(
                    select(*_SCALE_COLUMNS).where(GradeScaleRow.scale_id == scale.scale_id).with_for_update()
                )
            ).one()
            if (list(current.grades), current.below_lowest, current.description) == tuple(values.values()):
                await session.commit()
                return _stored_scale(current), "unchanged"
            in_use = set(
                (
                    await session.execute(
                        select(AnchorEssayReference.grade)
                        .where(AnchorEssayReference.grade_scale == scale.scale_id)
                        .distinct()
                    )
                ).scalars()
            )
            dropped = sorted(in_use - set(scale.grades))
            if dropped:
                raise ConflictError(
                    f"Grade scale {scale.scale_id!r} cannot drop grade(s) {', '.join(dropped)}: registered "
                    "anchors carry them. Delete or re-register those anchors first, or create a new scale "
                    "under another id.",
                    details={"scale_id": scale.scale_id, "grades_in_use": dropped},
                )
            updated = (
                await session.execute(
                    update(GradeScaleRow)
                    .where(GradeScaleRow.scale_id == scale.scale_id)
                    .values(**values, updated_at=func.now())
                    .returning(*_SCALE_COLUMNS)
                )
            ).one()
            await session.commit()
        return _stored_scale(updated), "updated"


# --- assignments ----------------------------------------------------------------------

_ANCHOR_COUNT = (
    select(func.count())
    .where(AnchorEssayReference.assignment_id == AssessmentAssignment.assignment_id)
    .correlate(AssessmentAssignment)
    .scalar_subquery()
    .label("anchor_count")
)
_ASSIGNMENT_COLUMNS = (
    AssessmentAssignment.assignment_id,
    AssessmentAssignment.grade_scale,
    AssessmentAssignment.instructions,
    AssessmentAssignment.student_prompt,
    AssessmentAssignment.judge_rubric,
    AssessmentAssignment.course_id,
    _ANCHOR_COUNT,
    AssessmentAssignment.created_at,
    AssessmentAssignment.updated_at,
)


def _assignment(row: Row[Any]) -> Assignment:
    return Assignment(**row._asdict())


class PostgresAssignmentRepository(_Repository):
    async def get(self, assignment_id: str) -> Assignment | None:
        async with database_errors_as_unavailable(), self._sessions() as session:
            return await self._get(session, assignment_id)

    async def _get(self, session: AsyncSession, assignment_id: str) -> Assignment | None:
        stmt = select(*_ASSIGNMENT_COLUMNS).where(AssessmentAssignment.assignment_id == assignment_id)
        row = (await session.execute(stmt)).one_or_none()
        return _assignment(row) if row is not None else None

    async def list(self, *, course_id: str | None = None) -> list[Assignment]:
        stmt = select(*_ASSIGNMENT_COLUMNS).order_by(AssessmentAssignment.assignment_id)
        if course_id is not None:
            stmt = stmt.where(AssessmentAssignment.course_id == course_id)
        async with database_errors_as_unavailable(), self._sessions() as session:
            rows = (await session.execute(stmt)).all()
        return [_assignment(row) for row in rows]

    async def save(self, draft: AssignmentDraft) -> tuple[Assignment, WriteStatus]:
        values = {
            "grade_scale": draft.grade_scale,
            "instructions": draft.instructions,
            "student_prompt": draft.student_prompt,
            "judge_rubric": draft.judge_rubric,
            "course_id": draft.course_id,
        }
        async with database_errors_as_unavailable(), self._sessions() as session:
            inserted = (
                await session.execute(
                    insert(AssessmentAssignment)
                    .values(assignment_id=draft.assignment_id, **values)
                    .on_conflict_do_nothing(index_elements=[AssessmentAssignment.assignment_id])
                    .returning(AssessmentAssignment.assignment_id)
                )
            ).scalar_one_or_none()
            if inserted is not None:
                status: WriteStatus = "created"
            else:
                # Lock the row: anchor registrations hold it FOR SHARE, so no anchor can be
                # added between the anchor count below and the scale change.
                current = (
                    await session.execute(
                        select(*(getattr(AssessmentAssignment, name) for name in values))
                        .where(AssessmentAssignment.assignment_id == draft.assignment_id)
                        .with_for_update()
                    )
                ).one()
                if current.grade_scale != draft.grade_scale:
                    await self._refuse_scale_change_with_anchors(session, draft, current.grade_scale)
                if current._asdict() == values:
                    status = "unchanged"
                else:
                    await session.execute(
                        update(AssessmentAssignment)
                        .where(AssessmentAssignment.assignment_id == draft.assignment_id)
                        .values(**values, updated_at=func.now())
                    )
                    status = "updated"
            assignment = await self._get(session, draft.assignment_id)
            await session.commit()
        assert assignment is not None
        return assignment, status

    @staticmethod
    async def _refuse_scale_change_with_anchors(
        session: AsyncSession, draft: AssignmentDraft, current_scale: str
    ) -> None:
        anchors = (
            await session.execute(
                select(func.count()).where(AnchorEssayReference.assignment_id == draft.assignment_id)
            )
        ).scalar_one()
        if anchors:
            raise ConflictError(
                f"Assignment {draft.assignment_id!r} has {anchors} anchor(s) graded on scale {current_scale!r}; "
                f"changing its grade scale to {draft.grade_scale!r} would leave them with grades from another "
                "scale. Delete its anchors first (GET /api/v1/assignments/<id>/anchors, then "
                "DELETE /api/v1/anchors/<anchor_id>) and register new ones, or create a new assignment "
                "for the new scale.",
                details={
                    "assignment_id": draft.assignment_id,
                    "current_grade_scale": current_scale,
                    "requested_grade_scale": draft.grade_scale,
                    "anchor_count": anchors,
                },
            )


# --- anchor references ----------------------------------------------------------------

_ANCHOR_COLUMNS_SQL = "id, assignment_id, anchor_label, grade, grade_scale, text_storage_id, created_at, updated_at"

# One statement decides created / updated / unchanged, with no read-then-write race:
# the unique constraint arbitrates concurrent registrations of the same key; the
# DO UPDATE's WHERE skips the write when text and grade are the same (the row is still
# locked); ``xmax = 0`` tells a fresh insert from an update. When nothing was written,
# the UNION's second branch returns the existing row.
_UPSERT_ANCHOR = text(
    f"""
    WITH upserted AS (
        INSERT INTO anchor_essay_references AS a
            (assignment_id, anchor_label, grade, grade_scale, text_storage_id)
        VALUES (:assignment_id, :anchor_label, :grade, :grade_scale, :storage_id)
        ON CONFLICT ON CONSTRAINT {ANCHOR_UNIQUE_CONSTRAINT} DO UPDATE
            SET text_storage_id = EXCLUDED.text_storage_id,
                grade = EXCLUDED.grade,
                updated_at = now()
            WHERE (a.text_storage_id, a.grade) IS DISTINCT FROM (EXCLUDED.text_storage_id, EXCLUDED.grade)
        RETURNING {", ".join(f"a.{c.strip()}" for c in _ANCHOR_COLUMNS_SQL.split(","))},
                  CASE WHEN a.xmax = 0 THEN 'created' ELSE 'updated' END AS status
    )
    SELECT * FROM upserted
    UNION ALL
    SELECT {_ANCHOR_COLUMNS_SQL}, 'unchanged' AS status
    FROM anchor_essay_references
    WHERE assignment_id = :assignment_id AND anchor_label = :anchor_label AND grade_scale = :grade_scale
      AND NOT EXISTS (SELECT 1 FROM upserted)
    """
)

_ANCHOR_COLUMNS = (
    AnchorEssayReference.id,
    AnchorEssayReference.assignment_id,
    AnchorEssayReference.anchor_label,
    AnchorEssayReference.grade,
    AnchorEssayReference.grade_scale,
    AnchorEssayReference.text_storage_id,
    AnchorEssayReference.created_at,
    AnchorEssayReference.updated_at,
)


def _anchor(row: Row[Any]) -> AnchorReference:
    return AnchorReference(
        anchor_id=int(row.id),
        assignment_id=row.assignment_id,
        anchor_label=row.anchor_label,
        grade=row.grade,
        grade_scale=row.grade_scale,
        storage_id=row.text_storage_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class PostgresAnchorRepository(_Repository):
    async def upsert(
        self, *, assignment_id: str, anchor_label: str, grade: str, grade_scale: str, storage_id: str
    ) -> AnchorUpsert:
        key = {"assignment_id": assignment_id, "anchor_label": anchor_label, "grade_scale": grade_scale}
        async with database_errors_as_unavailable(), self._sessions() as session:
            await self._check_still_valid(session, assignment_id=assignment_id, grade=grade, grade_scale=grade_scale)
            row = (await session.execute(_UPSERT_ANCHOR, {**key, "grade": grade, "storage_id": storage_id})).first()
            if row is None:
                # Nothing written, and the existing row was committed by a concurrent
                # registration after this statement's snapshot: ON CONFLICT has locked it
                # for us, so a new statement (new snapshot) is guaranteed to see it.
                row = (
                    await session.execute(
                        text(
                            f"SELECT {_ANCHOR_COLUMNS_SQL}, 'unchanged' AS status FROM anchor_essay_references "
                            "WHERE assignment_id = :assignment_id AND anchor_label = :anchor_label "
                            "AND grade_scale = :grade_scale"
                        ),
                        key,
                    )
                ).one()
            await session.commit()
        return AnchorUpsert(anchor=_anchor(row), status=row.status)

    @staticmethod
    async def _check_still_valid(session: AsyncSession, *, assignment_id: str, grade: str, grade_scale: str) -> None:
        """Hold the assignment (and a custom scale) FOR SHARE: neither can change until we commit."""
        current_scale = (
            await session.execute(
                select(AssessmentAssignment.grade_scale)
                .where(AssessmentAssignment.assignment_id == assignment_id)
                .with_for_update(read=True)
            )
        ).scalar_one_or_none()
        if current_scale is None:
            raise NotFoundError(f"No assignment {assignment_id!r}.", details={"assignment_id": assignment_id})
        if current_scale != grade_scale:
            raise ConflictError(
                f"The grade scale of assignment {assignment_id!r} changed to {current_scale!r} during the "
                "registration; retry it.",
                details={"assignment_id": assignment_id, "grade_scale": current_scale},
            )
        grades = (
            await session.execute(
                select(GradeScaleRow.grades).where(GradeScaleRow.scale_id == grade_scale).with_for_update(read=True)
            )
        ).scalar_one_or_none()
        if grades is not None and grade not in grades:
            raise ConflictError(
                f"Grade {grade!r} was removed from scale {grade_scale!r} during the registration; retry it.",
                details={"grade_scale": grade_scale, "valid_grades": grades},
            )

    async def list_for_assignment(self, assignment_id: str) -> list[AnchorReference]:
        stmt = (
            select(*_ANCHOR_COLUMNS)
            .where(AnchorEssayReference.assignment_id == assignment_id)
            .order_by(AnchorEssayReference.anchor_label, AnchorEssayReference.id)
        )
        async with database_errors_as_unavailable(), self._sessions() as session:
            rows = (await session.execute(stmt)).all()
        return [_anchor(row) for row in rows]

    async def get(self, anchor_id: int) -> AnchorReference | None:
        stmt = select(*_ANCHOR_COLUMNS).where(AnchorEssayReference.id == anchor_id)
        async with database_errors_as_unavailable(), self._sessions() as session:
            row = (await session.execute(stmt)).one_or_none()
        return _anchor(row) if row is not None else None

    async def delete(self, anchor_id: int) -> AnchorReference | None:
        stmt = delete(AnchorEssayReference).where(AnchorEssayReference.id == anchor_id).returning(*_ANCHOR_COLUMNS)
        async with database_errors_as_unavailable(), self._sessions() as session:
            row = (await session.execute(stmt)).one_or_none()
            await session.commit()
        return _anchor(row) if row is not None else None

    async def delete_unchanged(self, anchors: list[AnchorReference]) -> list[AnchorReference]:
        if not anchors:
            return []
        # Matching on the storage id too: an anchor re-registered (new text, new storage
        # id) after it was found missing is healthy again and must survive the prune.
        keys = [(anchor.anchor_id, anchor.storage_id) for anchor in anchors]
        stmt = (
            delete(AnchorEssayReference)
            .where(tuple_(AnchorEssayReference.id, AnchorEssayReference.text_storage_id).in_(keys))
            .returning(*_ANCHOR_COLUMNS)
        )
        async with database_errors_as_unavailable(), self._sessions() as session:
            rows = (await session.execute(stmt)).all()
            await session.commit()
        return sorted((_anchor(row) for row in rows), key=lambda anchor: anchor.anchor_id)
