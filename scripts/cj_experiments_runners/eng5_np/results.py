"""Read the CJ service's batch results into one small, stable shape (defensively).

The service's field names are read through a few alternatives each; a field the
runner cannot do without (the essay list, an essay's id and score) raises a
``RunnerError`` naming it, everything else is optional.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from scripts.cj_experiments_runners.eng5_np.errors import RunnerError


def pick(obj: Any, *paths: str, default: Any = None) -> Any:
    """The first present value among dotted ``paths`` (``"projection.grade"``)."""
    for path in paths:
        value: Any = obj
        for part in path.split("."):
            if isinstance(value, dict) and part in value:
                value = value[part]
            else:
                value = None
                break
        if value is not None:
            return value
    return default


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


@dataclass
class EssayResult:
    essay_id: str
    score: float
    rank: int | None = None
    standard_error: float | None = None
    comparisons: int | None = None
    wins: int | None = None
    is_anchor: bool = False
    anchor_grade: str | None = None
    anchor_label: str | None = None
    projected_grade: str | None = None
    grade_probability: float | None = None
    confidence: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    human_grade: str | None = None  # joined from the runner's inputs

    @property
    def grade(self) -> str | None:
        """The grade shown: the anchor's known grade, else the projection."""
        return self.anchor_grade if self.is_anchor else self.projected_grade


@dataclass
class Results:
    batch_id: str
    essays: list[EssayResult]
    grades: list[str]  # every grade a student can get, lowest first
    boundaries: list[dict[str, Any]]  # {"lower_grade", "upper_grade", "score"}
    scale_id: str | None = None
    reliability: dict[str, Any] = field(default_factory=dict)
    stop_reason: str | None = None
    status: str | None = None
    judge: dict[str, Any] = field(default_factory=dict)
    judge_diagnostics: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    projection_available: bool = True
    projection_reason: str | None = None
    anchor_check: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def students(self) -> list[EssayResult]:
        return [e for e in self.essays if not e.is_anchor]

    @property
    def anchors(self) -> list[EssayResult]:
        return [e for e in self.essays if e.is_anchor]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _essay(raw: dict[str, Any], index: int) -> EssayResult:
    essay_id = pick(raw, "essay_id", "essay_ref", "ref", "id", "anchor_label", "storage_id")
    score = _float(pick(raw, "score", "theta", "ability", "bt_score"))
    if essay_id is None:
        raise RunnerError(f"results essay #{index + 1} has no essay id (looked for essay_id / essay_ref / id)")
    if score is None:
        raise RunnerError(f"results essay {essay_id!r} has no numeric 'score'")
    anchor_grade = pick(raw, "anchor_grade", "known_grade", "anchor.grade")
    is_anchor = bool(pick(raw, "is_anchor", default=anchor_grade is not None))
    probabilities = pick(raw, "probabilities", "grade_probabilities", "projection.probabilities", default={}) or {}
    flags_raw = pick(raw, "flags", "fit_flags", "warnings", default=[])
    if isinstance(flags_raw, dict):
        flags = [k for k, v in flags_raw.items() if v]
    else:
        flags = [str(f) for f in flags_raw or []]
    return EssayResult(
        essay_id=str(essay_id),
        score=score,
        rank=pick(raw, "rank"),
        standard_error=_float(pick(raw, "standard_error", "se", "score_se")),
        comparisons=pick(raw, "comparisons", "comparison_count", "n_comparisons"),
        wins=pick(raw, "wins", "win_count"),
        is_anchor=is_anchor,
        anchor_grade=str(anchor_grade) if is_anchor and anchor_grade is not None else (
            str(pick(raw, "grade")) if is_anchor and pick(raw, "grade") is not None else None),
        anchor_label=pick(raw, "anchor_label", "label", "anchor.anchor_label"),
        projected_grade=None if is_anchor else pick(raw, "projected_grade", "projection.projected_grade",
                                                   "projection.grade", "grade"),
        grade_probability=_float(pick(raw, "grade_probability", "projection.grade_probability",
                                      "projected_grade_probability")),
        confidence=pick(raw, "confidence", "projection.confidence"),
        probabilities={str(k): float(v) for k, v in probabilities.items() if _float(v) is not None}
        if isinstance(probabilities, dict) else {},
        flags=flags,
    )


def normalize(payload: dict[str, Any], batch_id: str) -> Results:
    """The service's results payload → :class:`Results`."""
    if not isinstance(payload, dict):
        raise RunnerError("the results are not a JSON object")
    raw_essays = pick(payload, "essays", "ranking", "results", "items")
    if not isinstance(raw_essays, list):
        raise RunnerError("the results have no 'essays' list; is the CJ service the version this runner expects?")
    batch = pick(payload, "batch", default={}) or {}
    essays = [_essay(raw, i) for i, raw in enumerate(raw_essays)]
    essays.sort(key=lambda e: -e.score)
    for position, essay in enumerate(essays, start=1):
        essay.rank = essay.rank or position
    essays.sort(key=lambda e: e.rank or 0)

    projection = pick(payload, "projection", default={}) or {}
    calibration = pick(payload, "calibration", "projection.calibration", default={}) or {}
    boundaries = (pick(calibration, "calibration.boundaries", "boundaries", default=None)
                  or pick(payload, "boundaries", default=[]) or [])
    scale = pick(payload, "grade_scale", "scale", "calibration.scale", "projection.scale", default={}) or {}
    grades: list[str] = []
    scale_id = None
    if isinstance(scale, dict):
        scale_id = pick(scale, "scale_id", "id")
        below = pick(scale, "below_lowest")
        grades = ([str(below)] if below else []) + [str(g) for g in pick(scale, "grades", default=[]) or []]
    elif isinstance(scale, str):
        scale_id = scale
    if not grades:
        grades = [b["lower_grade"] for b in boundaries] + ([boundaries[-1]["upper_grade"]] if boundaries else [])
    if not grades:
        seen = {e.grade for e in essays if e.grade}
        grades = sorted(seen)
    reliability = pick(payload, "reliability", "batch.reliability", default={}) or {}
    if not isinstance(reliability, dict):
        reliability = {"scale_separation": reliability}
    anchor_check = pick(calibration, "anchor_leave_one_out", default=None) or pick(
        payload, "anchor_leave_one_out", "projection.anchor_leave_one_out", default={}) or {}
    warnings: list[str] = []
    for source in (payload, projection, calibration):
        for warning in pick(source, "warnings", default=[]) or []:
            if str(warning) not in warnings:
                warnings.append(str(warning))
    return Results(
        batch_id=str(pick(payload, "batch_id", "batch.batch_id", default=batch_id)),
        essays=essays,
        grades=grades,
        boundaries=[b for b in boundaries if isinstance(b, dict) and _float(b.get("score")) is not None],
        scale_id=scale_id,
        reliability=reliability,
        stop_reason=pick(payload, "stop_reason", "batch.stop_reason"),
        status=pick(payload, "status", "batch.status"),
        judge=pick(payload, "judge", "batch.judge", default={}) or {},
        judge_diagnostics=pick(payload, "judge_diagnostics", default={}) or {},
        counts=pick(payload, "counts", "batch.counts", default={}) or {},
        usage=pick(payload, "usage", "cost", "tokens", "batch.usage", default={}) or {},
        projection_available=bool(pick(payload, "projection.available", "calibration.available",
                                       "projection_available", default=True)),
        projection_reason=pick(payload, "projection.reason", "calibration.reason", "projection_reason"),
        anchor_check=anchor_check if isinstance(anchor_check, dict) else {},
        warnings=warnings,
    )


# --------------------------------------------------------------------------- agreement

def quadratic_weighted_kappa(a: list[int], b: list[int], n_categories: int) -> float:
    """QWK; reuses the service's implementation when importable (same repository)."""
    try:
        from services.cj_assessment_service.cj_core_logic.projection import quadratic_weighted_kappa as qwk

        return float(qwk(a, b, n_categories))
    except ImportError:  # pragma: no cover - the runner copied elsewhere
        pass
    import numpy as np

    observed = np.zeros((n_categories, n_categories))
    for i, j in zip(a, b, strict=True):
        observed[i, j] += 1
    expected = np.outer(observed.sum(1), observed.sum(0)) / max(len(a), 1)
    steps = np.arange(n_categories)
    weights = (steps[:, None] - steps[None, :]) ** 2 / (n_categories - 1) ** 2
    denominator = float((weights * expected).sum())
    return 1.0 if denominator == 0 else 1.0 - float((weights * observed).sum()) / denominator


def agreement(results: Results) -> dict[str, Any] | None:
    """Projected vs human grades of the students that carry both (None when none do)."""
    order = {g: i for i, g in enumerate(results.grades)}
    pairs = [
        (order[e.human_grade], order[e.projected_grade])
        for e in results.students
        if e.human_grade in order and e.projected_grade in order
    ]
    if not pairs:
        return None
    human, projected = [p[0] for p in pairs], [p[1] for p in pairs]
    n = len(pairs)
    return {
        "students": n,
        "exact": sum(h == p for h, p in pairs) / n,
        "within_one_step": sum(abs(h - p) <= 1 for h, p in pairs) / n,
        "mean_step_error": sum(p - h for h, p in pairs) / n,
        "quadratic_weighted_kappa": quadratic_weighted_kappa(human, projected, max(len(results.grades), 2)),
        "spearman_score_vs_human": _spearman([e.score for e in results.students if e.human_grade in order],
                                             [order[e.human_grade] for e in results.students
                                              if e.human_grade in order]),
    }


def _spearman(x: list[float], y: list[float]) -> float | None:
    if len(x) < 3:
        return None
    import numpy as np

    def ranks(v: list[float]) -> np.ndarray:
        arr = np.asarray(v, dtype=float)
        order = arr.argsort(kind="mergesort")
        r = np.empty(len(arr))
        r[order] = np.arange(len(arr))
        for value in np.unique(arr):  # average ranks for ties
            mask = arr == value
            r[mask] = r[mask].mean()
        return r

    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])
