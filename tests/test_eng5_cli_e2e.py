"""The ENG5 NP runner end to end: the CLI as a subprocess against both services as real processes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import asyncpg
import pytest

from tests.eng5_support import ANCHORS_FILE, DATA, Stack, assert_one_line_error, run_cli, start_stack

pytestmark = pytest.mark.slow

ASSIGNMENT = "00000000-0000-0000-0000-000000000001"
COURSE = "00000000-0000-0000-0000-000000000002"


@pytest.fixture(scope="module")
async def stack(postgres_server, tmp_path_factory):
    async with start_stack(postgres_server, tmp_path_factory.mktemp("eng5_e2e")) as running:
        yield running


@pytest.fixture(scope="module")
def env(stack: Stack) -> dict[str, str]:
    return stack.cli_env()


async def anchor_rows(stack: Stack, assignment_id: str) -> int:
    connection = await asyncpg.connect(stack.cj_db)
    try:
        return await connection.fetchval(
            "SELECT count(*) FROM anchor_essay_references WHERE assignment_id = $1", assignment_id)
    finally:
        await connection.close()


def ok(result) -> str:
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    return result.stdout


async def test_register_anchors_twice_changes_nothing_the_second_time(stack: Stack, env) -> None:
    # The incident report's invocation, verbatim (the assignment is created from the file's scale).
    first = ok(run_cli(env, "--mode", "register-anchors", "--assignment-id", ASSIGNMENT, "--anchors", ANCHORS_FILE))
    assert "created with scale eng5_np_legacy_9_step" in first
    assert "13 created" in first
    assert await anchor_rows(stack, ASSIGNMENT) == 13

    second = ok(run_cli(env, "--mode", "register-anchors", "--assignment-id", ASSIGNMENT, "--anchors", ANCHORS_FILE))
    assert "no change" in second and "already registered" in second
    assert await anchor_rows(stack, ASSIGNMENT) == 13

    listed = ok(run_cli(env, "--mode", "list-anchors", "--assignment-id", ASSIGNMENT))
    assert "13 anchors" in listed
    verified = ok(run_cli(env, "--mode", "verify-anchors", "--assignment-id", ASSIGNMENT))
    assert "all 13 anchors" in verified
    pruned = ok(run_cli(env, "--mode", "prune-anchors", "--assignment-id", ASSIGNMENT, "--report-only"))
    assert "would remove 0" in pruned


def test_plan_checks_everything_and_writes_nothing(env, tmp_path: Path) -> None:
    out = ok(run_cli(env, "--mode", "plan", "--assignment-id", ASSIGNMENT, "--anchors", ANCHORS_FILE,
                     "--max-students", "5", "--output-dir", str(tmp_path / "plan")))
    assert "both services are healthy" in out and "13 anchors registered" in out
    assert "0 with missing content" in out
    assert not (tmp_path / "plan").exists()
    dry = ok(run_cli(env, "--mode", "dry-run", "--assignment-id", ASSIGNMENT, "--max-students", "5",
                     "--output-dir", str(tmp_path / "dry")))
    skeleton = json.loads((tmp_path / "dry" / "assessment_run.json").read_text())
    assert skeleton["mode"] == "dry-run" and len(skeleton["students"]["essays"]) == 5
    assert "artefact skeleton" in dry


def test_incident_execute_invocation_works_verbatim(env, tmp_path: Path) -> None:
    out_dir = tmp_path / "incident"
    result = run_cli(
        env, "--mode", "execute", "--assignment-id", ASSIGNMENT, "--course-id", COURSE, "--batch-id", "test-1",
        "--max-comparisons", "5", "--await-completion", "--completion-timeout", "30", "--verbose",
        "--kafka-bootstrap-servers", "kafka:9092", "--output-dir", str(out_dir),
    )
    out = ok(result)
    assert "Kafka is not used" in result.stderr
    assert "Ranking" in out and "report:" in out
    run = json.loads((out_dir / "assessment_run.json").read_text())
    assert run["batch"]["status"]["status"] == "completed"
    assert run["inputs"]["course_id"] == COURSE
    assert 0 < len(run["comparisons"]) <= 5


def test_execute_awaits_and_writes_valid_artefacts(env, tmp_path: Path) -> None:
    out_dir = tmp_path / "small"
    out = ok(run_cli(
        env, "--mode", "execute", "--assignment-id", ASSIGNMENT, "--batch-id", "e2e-small", "--max-students", "12",
        "--max-comparisons", "120", "--judge", "heuristic", "--await-completion", "--completion-timeout", "240",
        "--output-dir", str(out_dir),
    ))
    assert "agreement with the human grades" in out

    run = json.loads((out_dir / "assessment_run.json").read_text(encoding="utf-8"))
    assert run["schema"].startswith("huleedu.eng5_np.assessment_run")
    assert len(run["inputs"]["students"]) == 12
    assert all(len(s["sha256"]) == 64 and s["storage_id"] for s in run["inputs"]["students"])
    assert len(run["inputs"]["anchors"]) == 13
    assert run["runner"]["version"] and run["services"]
    done = [c for c in run["comparisons"] if c.get("status") == "done"]
    assert 0 < len(done) <= 120
    assert len(run["summary"]["essays"]) == 25
    assert run["agreement"]["students"] == 12
    assert "quadratic_weighted_kappa" in run["agreement"]

    rows = list(csv.DictReader((out_dir / "results.csv").open(encoding="utf-8")))
    assert len(rows) == 25
    assert sum(r["is_anchor"] == "1" for r in rows) == 13
    assert all(r["projected_grade"] for r in rows if r["is_anchor"] == "0")

    html = (out_dir / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    assert html.count("data:image/png;base64,") == 3

    # Fetching the same batch again gives the same ranking and artefacts.
    fetched_dir = tmp_path / "fetched"
    ok(run_cli(env, "--mode", "fetch-results", "--batch-id", "e2e-small", "--students",
               str(DATA / "eng5_np_students.jsonl"), "--output-dir", str(fetched_dir)))
    fetched = list(csv.DictReader((fetched_dir / "results.csv").open(encoding="utf-8")))
    assert [r["essay_id"] for r in fetched] == [r["essay_id"] for r in rows]

    # Same batch id, different essays: refused with a clear line.
    again = run_cli(env, "--mode", "execute", "--assignment-id", ASSIGNMENT, "--batch-id", "e2e-small",
                    "--max-students", "11", "--output-dir", str(tmp_path / "conflict"))
    assert_one_line_error(again, 6, "e2e-small", "already exists")


async def test_anchor_grade_not_on_the_scale(stack: Stack, env, tmp_path: Path) -> None:
    folder = tmp_path / "anchors"
    folder.mkdir()
    (folder / "A__good.txt").write_text("A fine essay.", encoding="utf-8")
    (folder / "Q__odd.txt").write_text("An essay with a grade from nowhere.", encoding="utf-8")
    result = run_cli(env, "--mode", "register-anchors", "--assignment-id", ASSIGNMENT, "--anchors", str(folder))
    assert_one_line_error(result, 2, "'Q'", "not on scale eng5_np_legacy_9_step")
    assert await anchor_rows(stack, ASSIGNMENT) == 13  # nothing registered from the bad folder


def test_unknown_assignment_and_missing_anchors(env) -> None:
    result = run_cli(env, "--mode", "execute", "--assignment-id", "no-such-assignment", "--batch-id", "x1",
                     "--max-students", "2")
    assert_one_line_error(result, 4, "no-such-assignment", "does not exist")
    ok(run_cli(env, "--mode", "create-assignment", "--assignment-id", "bare", "--grade-scale", "e2e_scale",
               "--grades", "1,2,3"))
    result = run_cli(env, "--mode", "execute", "--assignment-id", "bare", "--batch-id", "x2", "--max-students", "2")
    assert_one_line_error(result, 4, "no anchors", "register-anchors")


def test_completion_timeout_then_cancel(env, tmp_path: Path) -> None:
    result = run_cli(env, "--mode", "execute", "--assignment-id", ASSIGNMENT, "--batch-id", "e2e-slow",
                     "--max-students", "40", "--max-comparisons", "5000", "--await-completion",
                     "--completion-timeout", "0.5", "--output-dir", str(tmp_path / "slow"))
    assert_one_line_error(result, 5, "e2e-slow", "fetch-results")
    cancelled = run_cli(env, "--mode", "cancel", "--batch-id", "e2e-slow")
    if cancelled.returncode == 0:
        assert "e2e-slow: cancelled" in cancelled.stdout
    else:  # it finished (stable scores) before the cancel arrived: refused with one line
        assert_one_line_error(cancelled, 6, "e2e-slow")


def test_wrong_token_is_one_clear_line(stack: Stack) -> None:
    env = stack.cli_env(CJ_SERVICE_TOKEN="wrong")
    result = run_cli(env, "--mode", "list-anchors", "--assignment-id", ASSIGNMENT)
    assert_one_line_error(result, 3, "refused the token")
