"""Service layer of anchor essays: idempotent registration, listing, verify, prune, delete.

An anchor is a reference (assignment, label, grade, grade scale) to a text kept by the
Content Service. Registration stores the text first and then upserts the reference on
the unique key (assignment_id, anchor_label, grade_scale), so registering the same
anchors again never multiplies rows. ``verify`` and ``prune`` find and remove the
references whose text the Content Service no longer has (the incident this service
was rebuilt after).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from huleedu_service_libs.errors import ConflictError, NotFoundError, ValidationError
from services.cj_assessment_service import assignments_logic, grade_scales_logic
from services.cj_assessment_service.cj_core_logic.grade_scales import GradeScale
from services.cj_assessment_service.protocols import (
    AnchorReference,
    AnchorRepositoryProtocol,
    AnchorUpsert,
    Assignment,
    AssignmentRepositoryProtocol,
    ContentClientProtocol,
    GradeScaleRepositoryProtocol,
)

ContentStatus = Literal["ok", "missing"]


@dataclass(frozen=True)
class AnchorRegistration:
    assignment_id: str
    grade: str
    essay_text: str
    anchor_label: str | None = None


@dataclass(frozen=True)
class CheckedAnchor:
    anchor: AnchorReference
    content_status: ContentStatus


@dataclass(frozen=True)
class IntegrityReport:
    assignment: Assignment
    checked: list[CheckedAnchor]
    deleted: list[AnchorReference]

    @property
    def missing(self) -> list[AnchorReference]:
        return [item.anchor for item in self.checked if item.content_status == "missing"]


async def _assignment_and_scale(
    assignments: AssignmentRepositoryProtocol, scales: GradeScaleRepositoryProtocol, assignment_id: str
) -> tuple[Assignment, GradeScale]:
    assignment = await assignments_logic.get_assignment(assignments, assignment_id)
    scale = await grade_scales_logic.resolve_scale(scales, assignment.grade_scale)
    if scale is None:  # only a hand-edited database gets here
        raise ConflictError(
            f"Assignment {assignment_id!r} refers to grade scale {assignment.grade_scale!r}, which does not exist.",
            details={"assignment_id": assignment_id, "grade_scale": assignment.grade_scale},
        )
    return assignment, scale


def _check_grade(scale: GradeScale, grade: str, assignment_id: str) -> None:
    if grade in scale.grades:
        return
    valid = list(scale.grades)
    why = (
        f"{grade!r} is the scale's below-lowest grade, which no anchor carries"
        if grade == scale.below_lowest
        else f"grade {grade!r} is not on scale {scale.scale_id!r}"
    )
    raise ValidationError(
        f"Invalid grade for assignment {assignment_id!r}: {why}. Valid grades (low → high): {', '.join(valid)}.",
        details={"field": "grade", "grade_scale": scale.scale_id, "valid_grades": valid},
    )


async def register_anchor(
    *,
    assignments: AssignmentRepositoryProtocol,
    scales: GradeScaleRepositoryProtocol,
    anchors: AnchorRepositoryProtocol,
    content: ContentClientProtocol,
    registration: AnchorRegistration,
) -> AnchorUpsert:
    assignment, scale = await _assignment_and_scale(assignments, scales, registration.assignment_id)
    _check_grade(scale, registration.grade, assignment.assignment_id)
    label = registration.anchor_label or registration.grade
    # The text goes to the Content Service BEFORE the reference is written: if the store
    # fails, nothing is written here. If the upsert fails after a successful store, the
    # only leftover is an unreferenced blob, which is harmless (re-registering the same
    # text reuses it: identical text gets the same storage id).
    storage_id = await content.store_text(
        registration.essay_text,
        metadata={
            "kind": "anchor_essay",
            "assignment_id": assignment.assignment_id,
            "anchor_label": label,
            "grade": registration.grade,
            "grade_scale": scale.scale_id,
        },
    )
    return await anchors.upsert(
        assignment_id=assignment.assignment_id,
        anchor_label=label,
        grade=registration.grade,
        grade_scale=scale.scale_id,
        storage_id=storage_id,
    )


def _in_scale_order(scale: GradeScale, anchors: list[AnchorReference]) -> list[AnchorReference]:
    """Grade order of the scale (low → high), then label, then id; off-scale grades last."""
    position = {grade: index for index, grade in enumerate(scale.grades)}
    return sorted(
        anchors,
        key=lambda a: (
            a.grade_scale != scale.scale_id,
            position.get(a.grade, len(position)),
            a.anchor_label,
            a.anchor_id,
        ),
    )


async def list_anchors(
    *,
    assignments: AssignmentRepositoryProtocol,
    scales: GradeScaleRepositoryProtocol,
    anchors: AnchorRepositoryProtocol,
    assignment_id: str,
) -> tuple[Assignment, list[AnchorReference]]:
    assignment, scale = await _assignment_and_scale(assignments, scales, assignment_id)
    return assignment, _in_scale_order(scale, await anchors.list_for_assignment(assignment_id))


async def _check_contents(
    content: ContentClientProtocol, anchors: list[AnchorReference], concurrency: int
) -> list[CheckedAnchor]:
    """Ask the Content Service about every distinct storage id, a few at a time.

    An anchor is reported missing only on a definite "not found"; any failure (Content
    Service down → 503, odd answer → 502) fails the whole check, so an outage can never
    make ``prune`` delete healthy references.
    """
    limit = asyncio.Semaphore(max(1, concurrency))
    storage_ids = list(dict.fromkeys(anchor.storage_id for anchor in anchors))

    async def exists(storage_id: str) -> bool:
        async with limit:
            return await content.exists(storage_id)

    results = await asyncio.gather(*(exists(sid) for sid in storage_ids), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    found = dict(zip(storage_ids, results, strict=True))
    return [CheckedAnchor(anchor, "ok" if found[anchor.storage_id] else "missing") for anchor in anchors]


async def verify_anchors(
    *,
    assignments: AssignmentRepositoryProtocol,
    scales: GradeScaleRepositoryProtocol,
    anchors: AnchorRepositoryProtocol,
    content: ContentClientProtocol,
    assignment_id: str,
    concurrency: int = 10,
) -> IntegrityReport:
    assignment, listed = await list_anchors(
        assignments=assignments, scales=scales, anchors=anchors, assignment_id=assignment_id
    )
    return IntegrityReport(assignment, await _check_contents(content, listed, concurrency), deleted=[])


async def prune_anchors(
    *,
    assignments: AssignmentRepositoryProtocol,
    scales: GradeScaleRepositoryProtocol,
    anchors: AnchorRepositoryProtocol,
    content: ContentClientProtocol,
    assignment_id: str,
    dry_run: bool,
    concurrency: int = 10,
) -> IntegrityReport:
    """Delete the references whose content is missing (or, with ``dry_run``, only report them)."""
    report = await verify_anchors(
        assignments=assignments,
        scales=scales,
        anchors=anchors,
        content=content,
        assignment_id=assignment_id,
        concurrency=concurrency,
    )
    if dry_run or not report.missing:
        return report
    deleted = await anchors.delete_unchanged(report.missing)
    return IntegrityReport(report.assignment, report.checked, deleted=deleted)


async def get_anchor(anchors: AnchorRepositoryProtocol, anchor_id: int) -> AnchorReference:
    anchor = await anchors.get(anchor_id)
    if anchor is None:
        raise NotFoundError(f"No anchor {anchor_id}.", details={"anchor_id": anchor_id})
    return anchor


async def get_anchor_with_text(
    anchors: AnchorRepositoryProtocol, content: ContentClientProtocol, anchor_id: int
) -> tuple[AnchorReference, str]:
    anchor = await get_anchor(anchors, anchor_id)
    essay_text = await content.fetch_text(anchor.storage_id)
    if essay_text is None:
        raise NotFoundError(
            f"The text of anchor {anchor_id} ({anchor.anchor_label!r}, storage id {anchor.storage_id}) is missing "
            "from the Content Service. Run POST /api/v1/assignments/<id>/anchors/prune and register the anchor again.",
            details={"anchor_id": anchor_id, "storage_id": anchor.storage_id, "reason": "content_missing"},
        )
    return anchor, essay_text


async def delete_anchor(anchors: AnchorRepositoryProtocol, anchor_id: int) -> AnchorReference:
    deleted = await anchors.delete(anchor_id)
    if deleted is None:
        raise NotFoundError(f"No anchor {anchor_id}.", details={"anchor_id": anchor_id})
    return deleted
