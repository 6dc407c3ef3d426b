"""Grade projection: turn a fitted CJ scale into grades using anchor essays.

Pure numeric kernels, no I/O. Inputs are the fitted scores and standard errors of
all items (from :mod:`scoring`), which items are anchors with which known grades,
and the grade scale. Outputs are JSON-safe via ``to_dict()``.

How boundaries are placed (``calibrate_boundaries``)
----------------------------------------------------
1. Each anchored grade gets a *centre*: the mean score of its anchors (one anchor
   per grade is fine).
2. The overall trend ``slope`` (logits per grade step) is the least-squares slope
   of anchor score on grade rank. If it is not positive the anchors contradict
   the scale and no projection is made.
3. Centres are made increasing in the scale's order by weighted isotonic
   regression (pool-adjacent-violators) with a minimum gap of
   ``min_gap_fraction * slope`` per grade step: anchors that are out of order are
   pooled instead of producing crossed or zero-width grade bands.
4. Grades without anchors get centres by linear interpolation in grade rank
   between anchored neighbours, and by extrapolation with ``slope`` beyond the
   lowest / highest anchored grade.
5. The boundary between adjacent grades is the midpoint of their centres. The
   lowest grade's band reaches as far below its centre as it reaches above it; a
   student below that (i.e. more than half a grade step below the lowest grade's
   centre) gets the scale's below-lowest grade when it has one. Otherwise the
   lowest and highest bands are open-ended.

Each student's grade is the band containing the score; its probability per grade
integrates Normal(score, SE) over each band, so a large SE spreads probability over
neighbouring grades. Confidence is read from the probability of the projected grade
(``DEFAULT_CONFIDENCE_THRESHOLDS``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import ndtr

from services.cj_assessment_service.cj_core_logic.grade_scales import GradeScale

# Probability of the projected grade at or above which confidence is "high" and
# "medium"; below the second it is "low". 0.7 means the student is more than twice
# as likely in this grade as anywhere else; 0.4 still makes it the clear favourite
# among the usually 2-3 plausible neighbouring grades.
DEFAULT_CONFIDENCE_THRESHOLDS = (0.70, 0.40)
# Minimum spacing of grade centres, as a fraction of the average logits per grade.
DEFAULT_MIN_GAP_FRACTION = 0.25
# A leave-one-out exact agreement below this earns a warning about the calibration.
_LOO_WARNING_LEVEL = 0.5


class CalibrationError(ValueError):
    """The anchors cannot place grade boundaries; the message says why."""


# ---------------------------------------------------------------- calibration


@dataclass(frozen=True)
class Calibration:
    """Grade centres and boundaries on the score scale."""

    scale: GradeScale
    centres: np.ndarray  # one per scale grade (below-lowest excluded), increasing
    cuts: np.ndarray  # band edges between the grades of scale.all_grades(), increasing
    slope: float  # logits per grade step, from the anchors
    anchored_grades: tuple[str, ...]
    interpolated_grades: tuple[str, ...]
    extrapolated_grades: tuple[str, ...]
    out_of_order_grades: tuple[str, ...]  # anchored grades whose raw means broke the order

    @property
    def grades(self) -> tuple[str, ...]:
        return self.scale.all_grades()

    def boundaries(self) -> list[dict[str, Any]]:
        grades = self.grades
        return [
            {"lower_grade": grades[k], "upper_grade": grades[k + 1], "score": float(self.cuts[k])}
            for k in range(self.cuts.size)
        ]


def _isotonic_increasing(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least-squares non-decreasing fit (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [weighted mean, total weight, count]
    for value, weight in zip(values, weights, strict=True):
        blocks.append([float(value), float(weight), 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean2, weight2, count2 = blocks.pop()
            mean1, weight1, count1 = blocks[-1]
            total = weight1 + weight2
            blocks[-1] = [(mean1 * weight1 + mean2 * weight2) / total, total, count1 + count2]
    return np.concatenate([np.full(count, mean) for mean, _, count in blocks])


def calibrate_boundaries(
    anchor_scores: Sequence[float] | np.ndarray,
    anchor_grades: Sequence[str],
    scale: GradeScale,
    *,
    min_gap_fraction: float = DEFAULT_MIN_GAP_FRACTION,
) -> Calibration:
    """Place grade boundaries from anchors (see the module docstring for the method).

    Raises :class:`CalibrationError` when the anchors cover fewer than two distinct
    grades or their scores do not increase with grade; ``ValueError`` for a grade
    that is not on the scale (that is a caller error, not a data condition).
    """
    scores = np.asarray(anchor_scores, dtype=float).ravel()
    if scores.size != len(anchor_grades):
        raise ValueError("anchor_scores and anchor_grades differ in length")
    if not np.all(np.isfinite(scores)):
        raise ValueError("anchor scores must be finite")
    ranks = np.array([scale.grades.index(g) if g in scale.grades else -1 for g in anchor_grades])
    unknown = sorted({g for g, r in zip(anchor_grades, ranks, strict=True) if r < 0})
    if unknown:
        raise ValueError(f"anchor grade(s) {unknown} are not on scale {scale.scale_id!r}")

    anchored_ranks = np.unique(ranks)
    if anchored_ranks.size < 2:
        have = ", ".join(scale.grades[r] for r in anchored_ranks) or "none"
        raise CalibrationError(
            f"anchors cover {anchored_ranks.size} distinct grade(s) ({have}); "
            "at least two are needed to place grade boundaries"
        )
    rank_mean = ranks.mean()
    slope = float(((ranks - rank_mean) @ (scores - scores.mean())) / ((ranks - rank_mean) ** 2).sum())
    if not slope > 0:
        raise CalibrationError(
            "anchor scores do not increase with grade (least-squares slope "
            f"{slope:.3g} logits per grade): the judgements contradict the anchors' grades"
        )

    counts = np.array([(ranks == r).sum() for r in anchored_ranks], dtype=float)
    means = np.array([scores[ranks == r].mean() for r in anchored_ranks])
    # Shifting by gap*rank turns "increments >= gap per step" into "non-decreasing",
    # so plain PAVA solves the spaced problem exactly.
    gap = min_gap_fraction * slope
    anchored_centres = _isotonic_increasing(means - gap * anchored_ranks, counts) + gap * anchored_ranks
    out_of_order = tuple(
        scale.grades[anchored_ranks[k + 1]]
        for k in range(anchored_ranks.size - 1)
        if means[k + 1] <= means[k]
    )

    all_ranks = np.arange(len(scale.grades))
    centres = np.interp(all_ranks, anchored_ranks, anchored_centres)
    low, high = anchored_ranks[0], anchored_ranks[-1]
    below, above = all_ranks < low, all_ranks > high
    centres[below] = anchored_centres[0] - (low - all_ranks[below]) * slope
    centres[above] = anchored_centres[-1] + (all_ranks[above] - high) * slope

    cuts = (centres[:-1] + centres[1:]) / 2
    if scale.below_lowest is not None:
        # Mirror the lowest grade's upper half-width below its centre.
        cuts = np.concatenate([[centres[0] - (cuts[0] - centres[0])], cuts])
    anchored_set = set(anchored_ranks.tolist())
    return Calibration(
        scale=scale,
        centres=centres,
        cuts=cuts,
        slope=slope,
        anchored_grades=tuple(scale.grades[r] for r in anchored_ranks),
        interpolated_grades=tuple(
            scale.grades[r] for r in all_ranks if low < r < high and r not in anchored_set
        ),
        extrapolated_grades=tuple(scale.grades[r] for r in all_ranks if r < low or r > high),
        out_of_order_grades=out_of_order,
    )


def grade_probabilities(
    scores: np.ndarray, standard_errors: np.ndarray, calibration: Calibration
) -> np.ndarray:
    """P(grade) per item (rows) and grade of ``calibration.grades`` (columns); rows sum to 1."""
    s = np.asarray(scores, dtype=float)[:, None]
    # A zero SE would mean certainty; keep it tiny but positive so the Normal CDF
    # degenerates to a step instead of dividing by zero.
    se = np.maximum(np.asarray(standard_errors, dtype=float), 1e-9)[:, None]
    edges = np.concatenate([[-np.inf], calibration.cuts, [np.inf]])
    cdf = ndtr((edges[None, :] - s) / se)
    probabilities = np.clip(np.diff(cdf, axis=1), 0.0, None)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return probabilities


def grade_indices(scores: np.ndarray, calibration: Calibration) -> np.ndarray:
    """Index into ``calibration.grades`` of the band containing each score
    (a score exactly on a boundary goes to the higher grade)."""
    return np.searchsorted(calibration.cuts, np.asarray(scores, dtype=float), side="right")


# ------------------------------------------------------------------ projection


@dataclass(frozen=True)
class StudentProjection:
    index: int
    score: float
    standard_error: float
    grade: str
    probabilities: dict[str, float]  # every grade of the scale, lowest first
    confidence: str  # "high" | "medium" | "low"
    grade_probability: float  # probability of the projected grade

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "score": _json_float(self.score),
            "standard_error": _json_float(self.standard_error),
            "projected_grade": self.grade,
            "probabilities": {g: _json_float(p) for g, p in self.probabilities.items()},
            "confidence": self.confidence,
            "grade_probability": _json_float(self.grade_probability),
        }


@dataclass(frozen=True)
class AnchorCheck:
    """An anchor projected by boundaries fitted without it (calibration self-check)."""

    index: int
    known_grade: str
    score: float
    loo_grade: str | None  # None when the other anchors cannot calibrate
    exact: bool | None
    within_one_step: bool | None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "known_grade": self.known_grade,
            "score": _json_float(self.score),
            "leave_one_out_grade": self.loo_grade,
            "exact": self.exact,
            "within_one_step": self.within_one_step,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ProjectionResult:
    available: bool
    reason: str | None
    scale: GradeScale
    calibration: Calibration | None
    students: list[StudentProjection]
    anchors: list[AnchorCheck]
    loo_evaluated: int
    loo_exact_agreement: float | None
    loo_adjacent_agreement: float | None
    confidence_thresholds: tuple[float, float]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        calibration = None
        if self.calibration is not None:
            c = self.calibration
            calibration = {
                "slope_per_grade": _json_float(c.slope),
                "grade_centres": {g: _json_float(v) for g, v in zip(self.scale.grades, c.centres, strict=True)},
                "boundaries": [{**b, "score": _json_float(b["score"])} for b in c.boundaries()],
                "anchored_grades": list(c.anchored_grades),
                "interpolated_grades": list(c.interpolated_grades),
                "extrapolated_grades": list(c.extrapolated_grades),
                "out_of_order_grades": list(c.out_of_order_grades),
            }
        return {
            "available": self.available,
            "reason": self.reason,
            "scale": {
                "scale_id": self.scale.scale_id,
                "grades": list(self.scale.grades),
                "below_lowest": self.scale.below_lowest,
            },
            "calibration": calibration,
            "confidence_thresholds": {
                "high": self.confidence_thresholds[0],
                "medium": self.confidence_thresholds[1],
            },
            "anchor_leave_one_out": {
                "evaluated": self.loo_evaluated,
                "exact_agreement": _json_optional(self.loo_exact_agreement),
                "within_one_step_agreement": _json_optional(self.loo_adjacent_agreement),
                "anchors": [a.to_dict() for a in self.anchors],
            },
            "students": [s.to_dict() for s in self.students],
            "warnings": list(self.warnings),
        }


def _json_float(value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise FloatingPointError("refusing to emit a NaN or infinite number")
    return value


def _json_optional(value: float | None) -> float | None:
    return None if value is None else _json_float(value)


def _confidence(probability: float, thresholds: tuple[float, float]) -> str:
    high, medium = thresholds
    if probability >= high:
        return "high"
    if probability >= medium:
        return "medium"
    return "low"


def project_grades(
    scores: Sequence[float] | np.ndarray,
    standard_errors: Sequence[float] | np.ndarray,
    anchor_grades: Mapping[int, str],
    scale: GradeScale,
    *,
    student_indices: Sequence[int] | None = None,
    confidence_thresholds: tuple[float, float] = DEFAULT_CONFIDENCE_THRESHOLDS,
    min_gap_fraction: float = DEFAULT_MIN_GAP_FRACTION,
) -> ProjectionResult:
    """Project grades for students from anchors with known grades.

    ``anchor_grades`` maps item index → known grade (a grade of ``scale.grades``).
    Students are ``student_indices`` or, by default, every item that is not an
    anchor. Never raises for thin or contradictory anchors: the result is then
    ``available=False`` with a ``reason``.
    """
    s = np.asarray(scores, dtype=float).ravel()
    se = np.asarray(standard_errors, dtype=float).ravel()
    if s.shape != se.shape:
        raise ValueError("scores and standard_errors differ in length")
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(se))):
        raise ValueError("scores and standard errors must be finite")
    anchor_idx = np.array(sorted(anchor_grades), dtype=np.int64)
    if anchor_idx.size and (anchor_idx.min() < 0 or anchor_idx.max() >= s.size):
        raise ValueError("anchor index out of range")
    known = [anchor_grades[int(i)] for i in anchor_idx]
    if student_indices is None:
        students_idx = np.setdiff1d(np.arange(s.size), anchor_idx)
    else:
        students_idx = np.asarray(student_indices, dtype=np.int64).ravel()

    try:
        calibration = calibrate_boundaries(s[anchor_idx], known, scale, min_gap_fraction=min_gap_fraction)
    except CalibrationError as unavailable:
        anchors = [
            AnchorCheck(int(i), g, float(s[i]), None, None, None, "projection unavailable")
            for i, g in zip(anchor_idx, known, strict=True)
        ]
        return ProjectionResult(
            False, str(unavailable), scale, None, [], anchors, 0, None, None,
            confidence_thresholds, [f"grade projection unavailable: {unavailable}"],
        )

    grades = calibration.grades
    probabilities = grade_probabilities(s[students_idx], se[students_idx], calibration)
    chosen = grade_indices(s[students_idx], calibration)
    students = []
    for row, (i, k) in enumerate(zip(students_idx, chosen, strict=True)):
        p_grade = float(probabilities[row, k])
        students.append(
            StudentProjection(
                index=int(i),
                score=float(s[i]),
                standard_error=float(se[i]),
                grade=grades[k],
                probabilities={g: float(p) for g, p in zip(grades, probabilities[row], strict=True)},
                confidence=_confidence(p_grade, confidence_thresholds),
                grade_probability=p_grade,
            )
        )

    anchors = _leave_one_out(s, anchor_idx, known, scale, min_gap_fraction)
    evaluated = [a for a in anchors if a.loo_grade is not None]
    exact = sum(bool(a.exact) for a in evaluated) / len(evaluated) if evaluated else None
    adjacent = sum(bool(a.within_one_step) for a in evaluated) / len(evaluated) if evaluated else None
    warnings = _explain(calibration, len(evaluated), len(anchors), exact)
    return ProjectionResult(
        True, None, scale, calibration, students, anchors, len(evaluated), exact, adjacent,
        confidence_thresholds, warnings,
    )


def _leave_one_out(
    scores: np.ndarray,
    anchor_idx: np.ndarray,
    known: list[str],
    scale: GradeScale,
    min_gap_fraction: float,
) -> list[AnchorCheck]:
    checks = []
    for position, (i, grade) in enumerate(zip(anchor_idx, known, strict=True)):
        keep = np.arange(anchor_idx.size) != position
        try:
            calibration = calibrate_boundaries(
                scores[anchor_idx[keep]], [g for g, k in zip(known, keep, strict=True) if k], scale,
                min_gap_fraction=min_gap_fraction,
            )
        except CalibrationError as unavailable:
            checks.append(AnchorCheck(int(i), grade, float(scores[i]), None, None, None, str(unavailable)))
            continue
        predicted = calibration.grades[int(grade_indices(scores[i : i + 1], calibration)[0])]
        steps = abs(scale.rank(predicted) - scale.rank(grade))
        checks.append(AnchorCheck(int(i), grade, float(scores[i]), predicted, steps == 0, steps <= 1))
    return checks


def _explain(
    calibration: Calibration, n_evaluated: int, n_anchors: int, exact: float | None
) -> list[str]:
    out = []
    if calibration.out_of_order_grades:
        out.append(
            "anchors out of grade order at "
            f"{', '.join(calibration.out_of_order_grades)} (their mean score is not above the "
            "grade below): boundaries there come from a monotone fit"
        )
    if calibration.interpolated_grades:
        out.append(
            f"grades without anchors: {', '.join(calibration.interpolated_grades)} "
            "(boundaries interpolated between anchored grades)"
        )
    if calibration.extrapolated_grades:
        out.append(
            f"grades beyond the anchored range: {', '.join(calibration.extrapolated_grades)} "
            "(boundaries extrapolated from the average grade spacing)"
        )
    if n_evaluated < n_anchors:
        out.append(
            f"{n_anchors - n_evaluated} anchor(s) could not be checked by leave-one-out "
            "(the remaining anchors cover fewer than two grades)"
        )
    if exact is not None and exact < _LOO_WARNING_LEVEL:
        out.append(
            f"calibration self-check: only {exact:.0%} of anchors get their own grade back "
            "when left out of the calibration"
        )
    return out


# ------------------------------------------------------------------ agreement


def quadratic_weighted_kappa(
    rater_a: Sequence[int] | np.ndarray, rater_b: Sequence[int] | np.ndarray, n_categories: int
) -> float:
    """Cohen's kappa with quadratic weights for ordinal categories 0..n_categories-1.

    kappa = 1 - sum(w * observed) / sum(w * expected), w_ij = (i - j)² / (K - 1)²,
    expected = outer product of the two marginal histograms / N. When the expected
    disagreement is zero (both raters used one and the same category) the raters
    agree perfectly and 1.0 is returned.
    """
    a = np.asarray(rater_a, dtype=np.int64).ravel()
    b = np.asarray(rater_b, dtype=np.int64).ravel()
    if a.shape != b.shape or a.size == 0:
        raise ValueError("need two equally long, non-empty rating sequences")
    if n_categories < 2 or min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n_categories:
        raise ValueError(f"ratings must lie in 0..{n_categories - 1}")
    observed = np.zeros((n_categories, n_categories))
    np.add.at(observed, (a, b), 1.0)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / a.size
    steps = np.arange(n_categories)
    weights = (steps[:, None] - steps[None, :]) ** 2 / (n_categories - 1) ** 2
    expected_disagreement = float((weights * expected).sum())
    if expected_disagreement == 0:
        return 1.0
    return 1.0 - float((weights * observed).sum()) / expected_disagreement
