"""Service layer of assignments (the assessment context: grade scale, instructions, prompt, rubric)."""

from __future__ import annotations

from huleedu_service_libs.errors import NotFoundError, ValidationError
from services.cj_assessment_service import grade_scales_logic
from services.cj_assessment_service.protocols import (
    Assignment,
    AssignmentDraft,
    AssignmentRepositoryProtocol,
    GradeScaleRepositoryProtocol,
    WriteStatus,
)


async def save_assignment(
    assignments: AssignmentRepositoryProtocol,
    scales: GradeScaleRepositoryProtocol,
    draft: AssignmentDraft,
) -> tuple[Assignment, WriteStatus]:
    """Create or replace an assignment (the repository refuses a scale change once anchors exist)."""
    if await grade_scales_logic.resolve_scale(scales, draft.grade_scale) is None:
        available = await grade_scales_logic.available_scale_ids(scales)
        raise ValidationError(
            f"Unknown grade scale {draft.grade_scale!r}; use one of: {', '.join(available)} "
            "(or create it first with PUT /api/v1/grade-scales/<scale_id>).",
            details={"field": "grade_scale", "available": available},
        )
    return await assignments.save(draft)


async def get_assignment(assignments: AssignmentRepositoryProtocol, assignment_id: str) -> Assignment:
    assignment = await assignments.get(assignment_id)
    if assignment is None:
        raise NotFoundError(
            f"No assignment {assignment_id!r}; create it with PUT /api/v1/assignments/{assignment_id}.",
            details={"assignment_id": assignment_id},
        )
    return assignment


async def list_assignments(
    assignments: AssignmentRepositoryProtocol, *, course_id: str | None = None
) -> list[Assignment]:
    return await assignments.list(course_id=course_id)
