"""The README's main job (`python3 run.py demo`) as a smoke test, on an isolated dev stack.

The dev stack state lives in a temporary HULEEDU_DEVSTACK_DIR, both services get
fresh databases on the test PostgreSQL and free ports, so nothing touches a
developer's own .devstack. The demo runs twice: the second run reuses the running
stack, the assignment and the anchors ("unchanged") and runs a new batch.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from huleedu_service_libs.postgres_server import drop_database
from huleedu_service_libs.testing.fixtures import new_database
from huleedu_service_libs.testing.processes import REPO_ROOT, free_port
from tests.eng5_support import clean_env

pytestmark = pytest.mark.slow


def run(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


async def test_demo_runs_twice_on_an_isolated_stack(postgres_server, tmp_path: Path) -> None:
    content_name, content_db = await new_database(postgres_server, "demo_content")
    cj_name, cj_db = await new_database(postgres_server, "demo_cj")
    env = clean_env(
        HULEEDU_DEVSTACK_DIR=str(tmp_path / "devstack"),
        CONTENT_SERVICE_DATABASE_URL=content_db,
        CJ_ASSESSMENT_SERVICE_DATABASE_URL=cj_db,
        CONTENT_SERVICE_PORT=str(free_port()),
        CJ_ASSESSMENT_SERVICE_PORT=str(free_port()),
    )
    try:
        first = run(["-m", "scripts.demo", "--essays", "8", "--max-comparisons", "80",
                     "--output", str(tmp_path / "run1")], env)
        assert first.returncode == 0, (first.stdout[-3000:], first.stderr[-3000:])
        out = first.stdout
        assert "is healthy" in out
        assert "anchors: 13 created" in out
        assert "Ranking" in out
        assert "agreement with the human grades (8 students)" in out
        assert "quadratic weighted kappa" in out
        assert "report:" in out and "dev stack keeps running" in out
        report = tmp_path / "run1" / "report.html"
        assert report.exists() and report.read_text().count("data:image/png;base64,") == 3
        run_doc = json.loads((tmp_path / "run1" / "assessment_run.json").read_text())
        assert run_doc["inputs"]["grade_scale"]["grades"] == [f"{x / 2:.1f}" for x in range(2, 11)]

        second = run(["-m", "scripts.demo", "--essays", "8", "--max-comparisons", "60", "--stop-after",
                      "--output", str(tmp_path / "run2")], env)
        assert second.returncode == 0, (second.stdout[-3000:], second.stderr[-3000:])
        assert "already running" in second.stdout
        assert "anchors: unchanged (13 already registered)" in second.stdout
        assert (tmp_path / "run2" / "report.html").exists()
    finally:
        run(["-m", "scripts.devstack", "stop"], env, timeout=120)
        for name in (cj_name, content_name):
            try:
                await drop_database(postgres_server.admin_url, name)
            except Exception:
                pass
