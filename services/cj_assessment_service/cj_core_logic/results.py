"""A finished batch's results: scores, reliability, projected grades and judge diagnostics.

Pure (no I/O): the worker hands over the batch's items and comparison log, this module
runs :func:`scoring.score_comparisons` and :func:`projection.project_grades` and shapes
one JSON-safe document, stored with the batch and served by the results endpoint.
``results_csv`` renders the per-essay part of that document as CSV.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.cj_assessment_service.cj_core_logic import scoring
from services.cj_assessment_service.cj_core_logic.grade_scales import GradeScale
from services.cj_assessment_service.cj_core_logic.projection import project_grades

RESULTS_SCHEMA_VERSION = 1

NOT_AN_ASSESSOR_NOTES = {
    "heuristic": (
        "The heuristic judge is not an assessor: it compares surface text features (length, "
        "vocabulary, sentence length, mechanical slips) and never reads for meaning. These "
        "results are a baseline, not an assessment of the essays."
    ),
    "simulated": (
        "The simulated judge is not an assessor: its verdicts are drawn from given true scores "
        "with random noise, for tests and benchmarks. These results are not an assessment of "
        "the essays."
    ),
}


@dataclass(frozen=True)
class ResultItem:
    index: int
    essay_ref: str
    is_anchor: bool
    anchor_id: int | None
    anchor_grade: str | None


@dataclass(frozen=True)
class ResultComparison:
    first_item: int
    second_item: int
    status: str  # "done" | "failed" | "queued"
    winner_item: int | None
    confidence: float | None
    latency_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    error_reason: str | None
    round: int


def not_an_assessor_note(judge_name: str | None, is_assessor: bool | None) -> str | None:
    if is_assessor is None or is_assessor:
        return None
    return NOT_AN_ASSESSOR_NOTES.get(
        judge_name or "",
        f"The '{judge_name}' judge is not an assessor; these results are not an assessment of the essays.",
    )


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _sum(values: Sequence[float | int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def build_results(
    *,
    batch_id: str,
    assignment_id: str,
    items: Sequence[ResultItem],
    comparisons: Sequence[ResultComparison],
    scale: GradeScale | None,
    judge_info: Mapping[str, Any] | None,
    judge_settings: Mapping[str, Any] | None,
    metadata: Mapping[str, Any],
    stop_reason: str | None,
    max_comparisons: int,
    rounds: int,
    prior_sd: float,
    min_comparisons: int,
    seed: int,
) -> dict[str, Any]:
    """The results document of one batch (JSON-safe: finite numbers, plain types)."""
    n = len(items)
    done = [c for c in comparisons if c.status == "done" and c.winner_item is not None]
    failed = [c for c in comparisons if c.status == "failed"]
    winners = np.array([c.winner_item for c in done], dtype=np.int64)
    losers = np.array(
        [c.second_item if c.winner_item == c.first_item else c.first_item for c in done], dtype=np.int64
    )
    first_won = np.array([c.winner_item == c.first_item for c in done], dtype=bool)
    labels = [
        f"anchor {item.essay_ref} ({item.anchor_grade})" if item.is_anchor else item.essay_ref for item in items
    ]
    scored = scoring.score_comparisons(
        n,
        winners,
        losers,
        first_won=first_won,
        item_labels=labels,
        prior_sd=prior_sd,
        min_comparisons=min_comparisons,
        seed=seed % (2**32),
    )
    summary = scored.to_dict()
    per_item = summary["items"]

    # Grade projection from the anchors (if the scale is known and the grades are on it).
    anchor_grades = {
        item.index: item.anchor_grade
        for item in items
        if item.is_anchor and item.anchor_grade is not None and scale is not None and item.anchor_grade in scale.grades
    }
    student_indices = [item.index for item in items if not item.is_anchor]
    projection_doc: dict[str, Any] | None = None
    student_projection: dict[int, dict[str, Any]] = {}
    anchor_checks: dict[int, dict[str, Any]] = {}
    if scale is not None:
        projection = project_grades(
            scored.fit.scores,
            scored.fit.standard_errors,
            anchor_grades,
            scale,
            student_indices=student_indices,
        )
        projection_doc = projection.to_dict()
        student_projection = {s["index"]: s for s in projection_doc.pop("students")}
        anchor_checks = {a["index"]: a for a in projection_doc["anchor_leave_one_out"]["anchors"]}
        projection_available, projection_reason = projection.available, projection.reason
    else:
        projection_available, projection_reason = False, "the assignment's grade scale is unknown"

    # Student ranks among students only (rank 1 = best), alongside the overall rank.
    order = sorted(student_indices, key=lambda i: per_item[i]["rank"])
    student_rank = {index: position + 1 for position, index in enumerate(order)}

    essays = []
    for item in items:
        stats = per_item[item.index]
        flags = []
        if stats["never_compared"]:
            flags.append("never_compared")
        if stats["below_minimum_comparisons"]:
            flags.append("below_minimum_comparisons")
        if stats["misfit"]:
            flags.append("misfit")
        if stats["comparisons"] and stats["wins"] == stats["comparisons"]:
            flags.append("won_every_comparison")
        if stats["comparisons"] and stats["wins"] == 0:
            flags.append("lost_every_comparison")
        if summary["graph"]["n_components"] > 1 and stats["component"] > 0:
            flags.append("outside_main_component")
        entry: dict[str, Any] = {
            "essay_id": item.essay_ref,
            "item_index": item.index,
            "is_anchor": item.is_anchor,
            "anchor_id": item.anchor_id,
            "anchor_grade": item.anchor_grade,
            "rank": stats["rank"],
            "student_rank": student_rank.get(item.index),
            "score": stats["score"],
            "standard_error": stats["standard_error"],
            "comparisons": stats["comparisons"],
            "wins": stats["wins"],
            "losses": stats["losses"],
            "infit": stats["infit"],
            "outfit": stats["outfit"],
            "misfit": stats["misfit"],
            "below_minimum_comparisons": stats["below_minimum_comparisons"],
            "never_compared": stats["never_compared"],
            "flags": flags,
            "projected_grade": None,
            "grade_probabilities": None,
            "grade_probability": None,
            "confidence": None,
            "leave_one_out_grade": None,
        }
        if item.is_anchor:
            check = anchor_checks.get(item.index)
            if check is not None:
                entry["leave_one_out_grade"] = check["leave_one_out_grade"]
        else:
            projected = student_projection.get(item.index)
            if projected is not None:
                entry["projected_grade"] = projected["projected_grade"]
                entry["grade_probabilities"] = projected["probabilities"]
                entry["grade_probability"] = projected["grade_probability"]
                entry["confidence"] = projected["confidence"]
        essays.append(entry)
    essays.sort(key=lambda e: e["rank"])

    judge_name = (judge_info or {}).get("name")
    is_assessor = (judge_info or {}).get("is_assessor")
    failure_reasons = Counter(c.error_reason or "unknown" for c in failed)
    attempted = len(done) + len(failed)
    confidences = [c.confidence for c in done if c.confidence is not None]
    latencies = [c.latency_ms for c in done if c.latency_ms is not None]
    warnings = list(summary["warnings"])
    if projection_doc is not None:
        warnings.extend(projection_doc.get("warnings", []))
    elif projection_reason:
        warnings.append(f"grade projection unavailable: {projection_reason}")
    note = not_an_assessor_note(judge_name, is_assessor)
    if note:
        warnings.insert(0, note)

    cost = _sum([c.cost_usd for c in comparisons])
    return {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "batch_id": batch_id,
        "assignment_id": assignment_id,
        "stop_reason": stop_reason,
        "judge": {
            "name": judge_name,
            "model": (judge_info or {}).get("model"),
            "is_assessor": is_assessor,
            "note": note,
            "settings": dict(judge_settings or {}),
        },
        "counts": {
            "items": n,
            "students": len(student_indices),
            "anchors": n - len(student_indices),
            "budget": max_comparisons,
            "comparisons_done": len(done),
            "comparisons_failed": len(failed),
            "comparisons_attempted": attempted,
            "rounds": rounds,
        },
        "usage": {
            "prompt_tokens": _sum([c.prompt_tokens for c in comparisons]),
            "completion_tokens": _sum([c.completion_tokens for c in comparisons]),
            "cost_usd": _finite_or_none(cost),
        },
        "reliability": summary["reliability"],
        "fit": summary["fit"],
        "graph": summary["graph"],
        "item_fit": summary["item_fit"],
        "judge_diagnostics": {
            "position_bias": summary["position_bias"],
            "failure_rate": (len(failed) / attempted) if attempted else 0.0,
            "failures_by_reason": dict(sorted(failure_reasons.items())),
            "mean_confidence": (sum(confidences) / len(confidences)) if confidences else None,
            "mean_latency_ms": _finite_or_none(sum(latencies) / len(latencies)) if latencies else None,
        },
        "projection": {
            "available": projection_available,
            "reason": projection_reason,
        },
        "calibration": projection_doc,
        "essays": essays,
        "warnings": warnings,
        "metadata": dict(metadata),
    }


_CSV_FIXED_COLUMNS = (
    "rank",
    "student_rank",
    "essay_id",
    "is_anchor",
    "anchor_id",
    "anchor_grade",
    "projected_grade",
    "confidence",
    "grade_probability",
    "leave_one_out_grade",
    "score",
    "standard_error",
    "comparisons",
    "wins",
    "losses",
    "infit",
    "outfit",
    "misfit",
    "flags",
)
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(round(value, 6))
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES) and not _is_number(value):
        # Spreadsheet formula injection: an id like "=HYPERLINK(...)" must stay text.
        return "'" + value
    return value


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def results_csv(results: Mapping[str, Any]) -> str:
    """One row per essay (anchors included), best first; one probability column per grade."""
    grades: list[str] = []
    calibration = results.get("calibration") or {}
    scale = calibration.get("scale") if isinstance(calibration, dict) else None
    if scale:
        grades = ([scale["below_lowest"]] if scale.get("below_lowest") else []) + list(scale["grades"])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([*_CSV_FIXED_COLUMNS, *(f"p_{grade}" for grade in grades)])
    for essay in results.get("essays", []):
        row = [
            _csv_cell(";".join(essay["flags"]) if column == "flags" else essay.get(column))
            for column in _CSV_FIXED_COLUMNS
        ]
        probabilities = essay.get("grade_probabilities") or {}
        row.extend(_csv_cell(probabilities.get(grade)) for grade in grades)
        writer.writerow(row)
    return buffer.getvalue()
