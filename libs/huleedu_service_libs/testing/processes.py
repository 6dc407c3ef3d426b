"""Run a service as a real OS process (as production does) for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python_path_env() -> str:
    parts = [str(REPO_ROOT), str(REPO_ROOT / "libs")]
    existing = os.environ.get("PYTHONPATH")
    return os.pathsep.join(parts + ([existing] if existing else []))


class ServiceProcess:
    """``python -m <module>`` with env, on a port, waited on until /healthz answers 200.

    The generous start-up timeout is for shared 2-core CI machines, where importing the
    scientific stack and running migrations under load can take tens of seconds.
    """

    def __init__(self, module: str, *, env: dict[str, str], port: int | None = None, log_path: Path | None = None):
        self.module = module
        self.port = port or free_port()
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 150.0) -> None:
        env = {**os.environ, **self.env, "PYTHONPATH": python_path_env()}
        if self.log_path is not None:
            self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module],
            cwd=REPO_ROOT,
            env=env,
            stdout=self._log_file or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self._log_file else subprocess.DEVNULL,
        )
        self.wait_healthy(timeout=timeout)

    def wait_healthy(self, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error = "no answer"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.module} exited with {self.process.returncode} before becoming healthy"
                    + (f"; see {self.log_path}" if self.log_path else "")
                )
            try:
                response = httpx.get(f"{self.base_url}/healthz", timeout=2.0)
                if response.status_code == 200:
                    return
                last_error = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                last_error = type(exc).__name__
            time.sleep(0.2)
        raise TimeoutError(f"{self.module} not healthy after {timeout}s ({last_error})")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing — what a crash or OOM kill looks like."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def restart(self, *, timeout: float = 150.0) -> None:
        self.stop()
        self.start(timeout=timeout)
