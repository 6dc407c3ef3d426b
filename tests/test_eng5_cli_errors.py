"""Bad input to the runner without any service: one clear line on stderr and a non-zero exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from huleedu_service_libs.testing.processes import free_port
from tests.eng5_support import ANCHORS_FILE, assert_one_line_error, clean_env, run_cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    # Nothing listens on these ports; no dev stack state either.
    (tmp_path / "devstack").mkdir()
    return clean_env(
        CJ_SERVICE_URL=f"http://127.0.0.1:{free_port()}",
        CONTENT_SERVICE_URL=f"http://127.0.0.1:{free_port()}",
        HULEEDU_DEVSTACK_DIR=str(tmp_path / "devstack"),
    )


def test_missing_anchor_file(env) -> None:
    result = run_cli(env, "--mode", "register-anchors", "--assignment-id", "a1", "--anchors", "no/such/file.json")
    assert_one_line_error(result, 2, "no/such/file.json", "no such file")


def test_missing_students_file(env) -> None:
    result = run_cli(env, "--mode", "execute", "--assignment-id", "a1", "--students", "nope.jsonl")
    assert_one_line_error(result, 2, "nope.jsonl")


def test_folder_without_essays(env, tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "notes.md").write_text("not an essay")
    result = run_cli(env, "--mode", "register-anchors", "--assignment-id", "a1", "--anchors", str(folder))
    assert_one_line_error(result, 2, "no essays found")


def test_anchor_without_a_grade(env, tmp_path: Path) -> None:
    folder = tmp_path / "anchors"
    folder.mkdir()
    (folder / "essay.txt").write_text("An essay, but nobody said what grade it has.")
    result = run_cli(env, "--mode", "register-anchors", "--assignment-id", "a1", "--anchors", str(folder))
    assert_one_line_error(result, 2, "has no grade")


def test_mode_needs_its_arguments(env) -> None:
    result = run_cli(env, "--mode", "register-anchors", "--anchors", ANCHORS_FILE)
    assert_one_line_error(result, 2, "--assignment-id")


def test_services_down(env) -> None:
    result = run_cli(env, "--mode", "register-anchors", "--assignment-id", "a1", "--anchors", ANCHORS_FILE)
    line = assert_one_line_error(result, 3, "cannot reach", "python3 run.py dev start")
    assert "Content Service" in line


def test_services_down_incident_invocation_with_kafka_flag(env) -> None:
    result = run_cli(
        env, "--mode", "execute", "--assignment-id", "00000000-0000-0000-0000-000000000001",
        "--course-id", "00000000-0000-0000-0000-000000000002", "--batch-id", "test-1", "--max-comparisons", "5",
        "--await-completion", "--completion-timeout", "30", "--kafka-bootstrap", "localhost:9092",
    )
    assert_one_line_error(result, 3, "cannot reach")
    assert "warning: --kafka-bootstrap ignored" in result.stderr
