"""The runner's pieces without services: input loading, results parsing, artefacts, report, data files."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.cj_experiments_runners.eng5_np import artefacts, inputs
from scripts.cj_experiments_runners.eng5_np.cli import build_parser
from scripts.cj_experiments_runners.eng5_np.data import build_data_files
from scripts.cj_experiments_runners.eng5_np.errors import InputError, RunnerError
from scripts.cj_experiments_runners.eng5_np.results import agreement, normalize
from services.cj_assessment_service.cj_core_logic.grade_scales import BUILTIN_SCALES
from services.cj_assessment_service.cj_core_logic.results import ResultComparison, ResultItem, build_results

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "scripts/cj_experiments_runners/eng5_np/data"


# ----------------------------------------------------------------------------- inputs


def test_shipped_anchor_file_loads_with_legacy_grades() -> None:
    anchors = inputs.load_anchors(DATA / "eng5_np_anchor_essays.json")
    scale = BUILTIN_SCALES["eng5_np_legacy_9_step"]
    assert anchors.grade_scale == "eng5_np_legacy_9_step"
    inputs.check_grades(anchors, scale.scale_id, list(scale.grades))
    grades = {e.grade for e in anchors.essays}
    assert grades == set(scale.grades) - {"F+"}  # no ELLIPSE essay scored 1.0
    assert len({e.label for e in anchors.essays}) == len(anchors.essays)
    assert all(len(e.text) > 200 for e in anchors.essays)


def test_shipped_students_do_not_overlap_anchors_and_carry_human_grades() -> None:
    anchors = inputs.load_anchors(DATA / "eng5_np_anchor_essays.json")
    students = inputs.load_essays(DATA / "eng5_np_students.jsonl")
    assert len(students.essays) + len(anchors.essays) == 192
    assert not {e.essay_id for e in students.essays} & {e.essay_id for e in anchors.essays}
    legacy = list(BUILTIN_SCALES["eng5_np_legacy_9_step"].grades)
    assert all(inputs.human_grade_for(e, legacy) for e in students.essays)


def test_data_files_are_reproducible_from_the_ellipse_copy() -> None:
    anchor_doc, students = build_data_files.build()
    shipped = json.loads((DATA / "eng5_np_anchor_essays.json").read_text(encoding="utf-8"))
    assert anchor_doc == shipped
    shipped_students = [json.loads(line) for line in (DATA / "eng5_np_students.jsonl").read_text().splitlines()]
    assert students == shipped_students
    assert (DATA / "ellipse" / "README.md").exists()  # the licence note stays beside the data


def test_folder_with_manifest_grade_line_and_file_name(tmp_path: Path) -> None:
    import docx

    (tmp_path / "a.txt").write_text("First essay text.", encoding="utf-8")
    (tmp_path / "b.txt").write_text("Grade: C+\nSecond essay text.", encoding="utf-8")
    (tmp_path / "B__third.txt").write_text("Third essay text.", encoding="utf-8")
    document = docx.Document()
    document.add_paragraph("Fourth essay, from Word.")
    document.save(tmp_path / "d.docx")
    (tmp_path / "manifest.json").write_text(json.dumps({"a.txt": "A", "d.docx": {"grade": "E+", "label": "word"}}))
    anchors = inputs.load_anchors(tmp_path)
    by_id = {e.essay_id: e for e in anchors.essays}
    assert by_id["a"].grade == "A"
    assert by_id["b"].grade == "C+" and by_id["b"].text == "Second essay text."
    assert by_id["third"].grade == "B"
    assert by_id["d"].grade == "E+" and by_id["d"].label == "word" and "Word" in by_id["d"].text


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p / "missing.json", "no such file"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "no essays found"),
        (lambda p: (p / "x.json").write_text("{not json") and p / "x.json", "not valid JSON"),
        (lambda p: (p / "x.jsonl").write_text('{"text": ""}\n') and p / "x.jsonl", "has no 'text'"),
        (lambda p: (p / "x.csv").write_text("a") and p / "x.csv", "unsupported file type"),
    ],
)
def test_bad_inputs_raise_one_clear_line(tmp_path: Path, setup, message: str) -> None:
    with pytest.raises(InputError) as caught:
        inputs.load_essays(setup(tmp_path))
    assert message in caught.value.message and "\n" not in caught.value.line()


def test_anchor_without_grade_and_grade_off_scale(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("no grade anywhere")
    with pytest.raises(InputError, match="has no grade"):
        inputs.load_anchors(tmp_path)
    (tmp_path / "x.txt").write_text("Grade: Z\nessay")
    anchors = inputs.load_anchors(tmp_path)
    with pytest.raises(InputError, match="'Z', which is not on scale s1"):
        inputs.check_grades(anchors, "s1", ["A", "B"])


# ----------------------------------------------------------------------------- results


def service_results(with_scale: bool = True) -> dict:
    """A results document made by the service's own builder (the real shape)."""
    rng = random.Random(3)
    scale = BUILTIN_SCALES["eng5_np_legacy_9_step"]
    items, truth = [], []
    for grade_index, grade in enumerate(scale.grades[1:]):
        items.append(ResultItem(len(items), f"{grade}_1", True, len(items) + 1, grade))
        truth.append(grade_index)
    for k in range(16):
        items.append(ResultItem(len(items), f"S{k:02d}", False, None, None))
        truth.append(rng.uniform(0, 7))
    comparisons = []
    for _ in range(300):
        a, b = rng.sample(range(len(items)), 2)
        p = 1 / (1 + pow(2.718, -(truth[a] - truth[b]) * 1.5))
        comparisons.append(ResultComparison(a, b, "done", a if rng.random() < p else b, None, 1.0, None, None, None,
                                            None, 1))
    return build_results(
        batch_id="b1", assignment_id="a1", items=items, comparisons=comparisons,
        scale=scale if with_scale else None, judge_info={"name": "heuristic", "is_assessor": False},
        judge_settings={"kind": "heuristic"}, metadata={"x": 1}, stop_reason="budget_exhausted",
        max_comparisons=300, rounds=3, prior_sd=2.0, min_comparisons=5, seed=1,
    ), truth


def test_normalize_reads_the_service_results_document() -> None:
    payload, _ = service_results()
    results = normalize(json.loads(json.dumps(payload)), "b1")
    assert len(results.essays) == 24 and len(results.anchors) == 8
    assert results.grades[0] == "F" and results.grades[-1] == "A"
    assert results.boundaries and all("score" in b for b in results.boundaries)
    assert [e.rank for e in results.essays] == sorted(e.rank for e in results.essays)
    students = results.students
    assert all(s.projected_grade in results.grades for s in students)
    assert all(abs(sum(s.probabilities.values()) - 1) < 1e-6 for s in students)
    assert all(a.anchor_grade for a in results.anchors)
    assert results.judge["name"] == "heuristic"
    assert any("not an assessor" in w for w in results.warnings)


def test_normalize_names_a_missing_field() -> None:
    with pytest.raises(RunnerError, match="no 'essays' list"):
        normalize({"batch_id": "b"}, "b")
    with pytest.raises(RunnerError, match="no numeric 'score'"):
        normalize({"essays": [{"essay_id": "x"}]}, "b")


def test_agreement_and_artefacts(tmp_path: Path) -> None:
    payload, truth = service_results()
    results = normalize(payload, "b1")
    for essay in results.students:  # pretend humans agree with the projection, except one step off for one
        essay.human_grade = essay.projected_grade
    step = results.grades.index(results.students[0].projected_grade)
    results.students[0].human_grade = results.grades[step - 1 if step > 0 else step + 1]
    agree = agreement(results)
    assert agree["students"] == 16
    assert agree["exact"] == pytest.approx(15 / 16)
    assert 0.5 < agree["quadratic_weighted_kappa"] <= 1
    run = {"created_at": artefacts.now_iso(), "runner": artefacts.runner_info(), "inputs": {"assignment_id": "a1"},
           "results": payload, "comparisons": [{"winner": "x"}], "weird": float("nan")}
    paths = artefacts.write_all(tmp_path, run, results, agree)
    data = json.loads(paths["json"].read_text(encoding="utf-8"))  # strict JSON: the NaN became null
    assert data["weird"] is None and data["agreement"]["students"] == 16
    rows = list(csv.DictReader(paths["csv"].open(encoding="utf-8")))
    assert len(rows) == 24 and {"rank", "essay_id", "projected_grade", "human_grade", "p_A"} <= set(rows[0])
    html = paths["html"].read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 3  # scale, distribution, projected vs human
    assert "src='http" not in html and "<script" not in html  # self-contained
    assert "Agreement with the human grades" in html


def test_report_without_projection_or_human_grades(tmp_path: Path) -> None:
    payload, _ = service_results(with_scale=False)
    results = normalize(payload, "b1")
    assert not results.projection_available
    paths = artefacts.write_all(tmp_path, {"inputs": {}}, results, agreement(results))
    html = paths["html"].read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 1 and "No grades projected" in html


# ----------------------------------------------------------------------------- cli surface


def test_help_explains_modes_sources_and_exit_codes() -> None:
    text = build_parser().format_help()
    for needle in ("plan", "dry-run", "register-anchors", "execute", "verify-anchors", "prune-anchors",
                   "fetch-results", "create-assignment", "CJ_SERVICE_URL", "CONTENT_SERVICE_TOKEN",
                   ".devstack/state.json", "Exit codes"):
        assert needle in text


def test_incident_invocation_parses_and_kafka_flags_are_accepted() -> None:
    args = build_parser().parse_args([
        "--mode", "execute", "--assignment-id", "00000000-0000-0000-0000-000000000001",
        "--course-id", "00000000-0000-0000-0000-000000000002", "--batch-id", "test-1", "--max-comparisons", "5",
        "--await-completion", "--completion-timeout", "30", "--verbose", "--kafka-bootstrap-servers", "kafka:9092",
    ])
    assert args.max_comparisons == 5 and args.completion_timeout == 30 and args.verbose
    assert args.legacy_kafka_bootstrap_servers == "kafka:9092"


def test_cli_module_runs_from_the_repo_root() -> None:
    result = subprocess.run([sys.executable, "-m", "scripts.cj_experiments_runners.eng5_np.cli", "--help"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "register-anchors" in result.stdout
