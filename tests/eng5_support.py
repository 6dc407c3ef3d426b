"""Helpers for the runner and demo tests: both services as real processes, the CLI as a subprocess."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from huleedu_service_libs.postgres_server import PostgresServer, drop_database
from huleedu_service_libs.testing.fixtures import new_database
from huleedu_service_libs.testing.processes import REPO_ROOT, ServiceProcess, free_port, python_path_env

CLI_MODULE = "scripts.cj_experiments_runners.eng5_np.cli"
DATA = REPO_ROOT / "scripts/cj_experiments_runners/eng5_np/data"
ANCHORS_FILE = "scripts/cj_experiments_runners/eng5_np/data/eng5_np_anchor_essays.json"
# Variables that would point the runner or the services somewhere else than the test's own.
_FOREIGN = ("CJ_SERVICE_", "CONTENT_SERVICE_", "CJ_ASSESSMENT_SERVICE_", "DATABASE_URL", "HULEEDU_DEVSTACK_DIR")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
    env.update({"PYTHONPATH": python_path_env(), "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    env.update(extra)
    return env


@dataclass
class Stack:
    content: ServiceProcess
    cj: ServiceProcess
    content_token: str
    cj_token: str
    content_db: str
    cj_db: str
    devstack_dir: Path

    def cli_env(self, **extra: str) -> dict[str, str]:
        return clean_env(**{
            "CJ_SERVICE_URL": self.cj.base_url,
            "CONTENT_SERVICE_URL": self.content.base_url,
            "CJ_SERVICE_TOKEN": self.cj_token,
            "CONTENT_SERVICE_TOKEN": self.content_token,
            "HULEEDU_DEVSTACK_DIR": str(self.devstack_dir),
            **extra,
        })


def service_env(prefix: str, database_url: str, port: int, token: str, **extra: str) -> dict[str, str]:
    return {
        f"{prefix}DATABASE_URL": database_url,
        f"{prefix}PORT": str(port),
        f"{prefix}API_TOKEN": token,
        f"{prefix}ENVIRONMENT": "test",
        f"{prefix}LOG_LEVEL": "WARNING",
        **extra,
    }


@asynccontextmanager
async def start_stack(server: PostgresServer, workdir: Path, cj_extra: dict[str, str] | None = None
                      ) -> AsyncIterator[Stack]:
    content_name, content_db = await new_database(server, "eng5_content")
    cj_name, cj_db = await new_database(server, "eng5_cj")
    content_token, cj_token = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    content_port, cj_port = free_port(), free_port()
    content = ServiceProcess(
        "services.content_service",
        env=clean_env(**service_env("CONTENT_SERVICE_", content_db, content_port, content_token)),
        port=content_port,
        log_path=workdir / "content_service.log",
    )
    cj = ServiceProcess(
        "services.cj_assessment_service",
        env=clean_env(**service_env(
            "CJ_ASSESSMENT_SERVICE_", cj_db, cj_port, cj_token,
            CJ_ASSESSMENT_SERVICE_CONTENT_SERVICE_URL=f"http://127.0.0.1:{content_port}",
            CJ_ASSESSMENT_SERVICE_CONTENT_SERVICE_TOKEN=content_token,
            CJ_ASSESSMENT_SERVICE_JUDGE_KIND="heuristic",  # whatever a developer's .env says
            **(cj_extra or {}),
        )),
        port=cj_port,
        log_path=workdir / "cj_assessment_service.log",
    )
    devstack_dir = workdir / "no-devstack"
    devstack_dir.mkdir(exist_ok=True)
    try:
        content.start(timeout=120)
        cj.start(timeout=120)
        yield Stack(content, cj, content_token, cj_token, content_db, cj_db, devstack_dir)
    finally:
        cj.stop()
        content.stop()
        for name in (cj_name, content_name):
            try:
                await drop_database(server.admin_url, name)
            except Exception:  # best effort; the server goes away with the session anyway
                pass


def run_cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", CLI_MODULE, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], exit_code: int, *needles: str) -> str:
    """Non-zero exit, one 'error:' line on stderr that names the problem, no traceback."""
    assert result.returncode == exit_code, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("warning:")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
