"""The results document and its CSV: shape, JSON safety, anchors, projection, judge notes."""

from __future__ import annotations

import csv
import io
import json

import numpy as np

from services.cj_assessment_service.cj_core_logic.grade_scales import BUILTIN_SCALES
from services.cj_assessment_service.cj_core_logic.results import (
    ResultComparison,
    ResultItem,
    build_results,
    results_csv,
)
from services.cj_assessment_service.cj_core_logic.worker import make_rate_limiter, round_size

SCALE = BUILTIN_SCALES["swedish_8_anchor"]


def _simulated_log(n_students: int, anchor_grades: list[str], n_comparisons: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    items = [ResultItem(i, f"s{i}", False, None, None) for i in range(n_students)]
    items += [
        ResultItem(n_students + k, f"anchor-{g}", True, 100 + k, g) for k, g in enumerate(anchor_grades)
    ]
    true = np.concatenate([rng.normal(0, 1.5, n_students), np.linspace(-3, 3, len(anchor_grades))])
    comparisons = []
    for k in range(n_comparisons):
        i, j = rng.choice(len(items), size=2, replace=False)
        p = 1 / (1 + np.exp(-(true[i] - true[j])))
        winner = int(i) if rng.random() < p else int(j)
        comparisons.append(
            ResultComparison(int(i), int(j), "done", winner, 0.8, 300.0, 100, 20, 0.001, None, k // 10 + 1)
        )
    comparisons.append(ResultComparison(0, 1, "failed", None, None, None, 50, 5, 0.0005, "invalid_reply", 1))
    return items, comparisons


def _build(items, comparisons, judge_info, metadata=None):
    return build_results(
        batch_id="b1",
        assignment_id="a1",
        items=items,
        comparisons=comparisons,
        scale=SCALE,
        judge_info=judge_info,
        judge_settings={"kind": judge_info["name"]},
        metadata=metadata or {"run": "unit"},
        stop_reason="budget",
        max_comparisons=len(comparisons),
        rounds=5,
        prior_sd=2.0,
        min_comparisons=5,
        seed=7,
    )


def test_results_document_is_complete_and_json_safe() -> None:
    items, comparisons = _simulated_log(20, list(SCALE.grades), 200)
    results = _build(items, comparisons, {"name": "openai", "model": "m", "is_assessor": True})
    json.dumps(results, allow_nan=False)  # nothing NaN or infinite

    assert results["counts"]["comparisons_done"] == 200
    assert results["counts"]["comparisons_failed"] == 1
    assert results["counts"]["anchors"] == 8 and results["counts"]["students"] == 20
    assert results["usage"]["prompt_tokens"] == 200 * 100 + 50
    assert abs(results["usage"]["cost_usd"] - (0.2 + 0.0005)) < 1e-9
    assert results["judge_diagnostics"]["failures_by_reason"] == {"invalid_reply": 1}
    assert results["judge"]["note"] is None
    assert results["metadata"] == {"run": "unit"}
    assert results["projection"]["available"] is True
    assert [e["rank"] for e in results["essays"]] == list(range(1, 29))

    students = [e for e in results["essays"] if not e["is_anchor"]]
    anchors = [e for e in results["essays"] if e["is_anchor"]]
    assert sorted(e["student_rank"] for e in students) == list(range(1, 21))
    for essay in students:
        assert essay["projected_grade"] in SCALE.all_grades()
        assert abs(sum(essay["grade_probabilities"].values()) - 1) < 1e-6
        assert essay["confidence"] in ("high", "medium", "low")
    for anchor in anchors:
        assert anchor["anchor_grade"] in SCALE.grades
        assert anchor["projected_grade"] is None
    assert results["reliability"]["scale_separation"] > 0.5


def test_not_an_assessor_note_for_offline_judges() -> None:
    items, comparisons = _simulated_log(6, ["E", "C"], 40)
    for name in ("heuristic", "simulated"):
        results = _build(items, comparisons, {"name": name, "model": "x", "is_assessor": False})
        assert "not an assessor" in results["judge"]["note"]
        assert results["warnings"][0] == results["judge"]["note"]


def test_projection_unavailable_without_two_anchor_grades() -> None:
    items, comparisons = _simulated_log(6, ["C"], 40)
    results = _build(items, comparisons, {"name": "openai", "model": "m", "is_assessor": True})
    assert results["projection"]["available"] is False
    assert results["projection"]["reason"]
    assert all(e["projected_grade"] is None for e in results["essays"])


def test_csv_has_a_row_per_essay_and_a_probability_column_per_grade() -> None:
    items, comparisons = _simulated_log(10, list(SCALE.grades), 120)
    items[0] = ResultItem(0, "=HYPERLINK(\"x\")", False, None, None)
    results = _build(items, comparisons, {"name": "openai", "model": "m", "is_assessor": True})
    rows = list(csv.DictReader(io.StringIO(results_csv(results))))
    assert len(rows) == 18
    assert [f"p_{g}" for g in SCALE.grades] == [k for k in rows[0] if k.startswith("p_")]
    assert [int(r["rank"]) for r in rows] == list(range(1, 19))
    assert any(r["essay_id"] == "'=HYPERLINK(\"x\")" for r in rows)  # no formula injection
    student = next(r for r in rows if r["is_anchor"] == "false")
    assert student["projected_grade"] in SCALE.all_grades()


def test_round_size_is_a_multiple_of_concurrency() -> None:
    assert round_size(100, 16) == 64
    assert round_size(24, 4) == 12
    assert round_size(3, 8) == 8
    assert round_size(100, 1) == 50


def test_rate_limiter_accepts_fractional_rates() -> None:
    assert make_rate_limiter(0) is None
    assert make_rate_limiter(0.5).max_rate == 1
    assert make_rate_limiter(20).max_rate == 20
