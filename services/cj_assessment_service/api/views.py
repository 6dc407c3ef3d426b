"""JSON shapes of the CJ Assessment Service's resources (one place, shared by the routes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.cj_assessment_service.anchors_logic import IntegrityReport
from services.cj_assessment_service.grade_scales_logic import ScaleView
from services.cj_assessment_service.protocols import AnchorReference, Assignment


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def scale_json(view: ScaleView) -> dict[str, Any]:
    return {
        "scale_id": view.scale.scale_id,
        "grades": list(view.scale.grades),
        "below_lowest": view.scale.below_lowest,
        "description": view.scale.description,
        "builtin": view.builtin,
        "created_at": _iso(view.created_at),
        "updated_at": _iso(view.updated_at),
    }


def assignment_json(assignment: Assignment) -> dict[str, Any]:
    return {
        "assignment_id": assignment.assignment_id,
        "grade_scale": assignment.grade_scale,
        "instructions": assignment.instructions,
        "student_prompt": assignment.student_prompt,
        "judge_rubric": assignment.judge_rubric,
        "course_id": assignment.course_id,
        "anchor_count": assignment.anchor_count,
        "created_at": _iso(assignment.created_at),
        "updated_at": _iso(assignment.updated_at),
    }


def anchor_json(anchor: AnchorReference) -> dict[str, Any]:
    return {
        "anchor_id": anchor.anchor_id,
        "assignment_id": anchor.assignment_id,
        "anchor_label": anchor.anchor_label,
        "grade": anchor.grade,
        "grade_scale": anchor.grade_scale,
        "storage_id": anchor.storage_id,
        "created_at": _iso(anchor.created_at),
        "updated_at": _iso(anchor.updated_at),
    }


def integrity_json(report: IntegrityReport, *, dry_run: bool | None = None) -> dict[str, Any]:
    missing = report.missing
    payload: dict[str, Any] = {
        "assignment_id": report.assignment.assignment_id,
        "grade_scale": report.assignment.grade_scale,
        "summary": {"total": len(report.checked), "ok": len(report.checked) - len(missing), "missing": len(missing)},
        "anchors": [{**anchor_json(item.anchor), "content_status": item.content_status} for item in report.checked],
        "missing": [anchor_json(anchor) for anchor in missing],
    }
    if dry_run is not None:
        deleted_ids = {anchor.anchor_id for anchor in report.deleted}
        payload["dry_run"] = dry_run
        payload["summary"]["deleted"] = len(report.deleted)
        payload["summary"]["remaining"] = len(report.checked) - len(report.deleted)
        payload["deleted"] = [anchor_json(anchor) for anchor in report.deleted]
        # Missing references that survived: the dry run's candidates, or anchors
        # re-registered with new text while the prune ran.
        payload["would_delete" if dry_run else "kept_missing"] = [
            anchor_json(anchor) for anchor in missing if anchor.anchor_id not in deleted_ids
        ]
    return payload
