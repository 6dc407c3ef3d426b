#!/usr/bin/env python3
"""One entry point for a fresh machine that has nothing but Python ≥ 3.11.

    python3 run.py demo     # the main job: start the stack, register anchors, run a CJ batch, report
    python3 run.py test     # the whole test suite
    python3 run.py dev ...  # the local dev stack: start | stop | status | restart SERVICE
    python3 run.py cli ...  # the ENG5 NP batch-runner CLI (see --help)
    python3 run.py bench NAME [args]  # a benchmark from scripts/benchmarks/ (e.g. bt_fit_speed)

Each command first bootstraps: a virtual environment in .venv, pdm in .venv-tools, and
the exact packages of pdm.lock (re-synced only when pdm.lock changes). PostgreSQL is
not needed: an embedded server from a Python package is used unless DATABASE_URL /
TEST_DATABASE_URL point at one.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
TOOLS_VENV = ROOT / ".venv-tools"
STAMP = VENV / ".huleedu-lock-sha256"
BIN = "Scripts" if os.name == "nt" else "bin"

COMMANDS = {
    "demo": ["-m", "scripts.demo"],
    "test": ["-m", "pytest"],
    "dev": ["-m", "scripts.devstack"],
    "cli": ["-m", "scripts.cj_experiments_runners.eng5_np.cli"],
    "bench": None,  # run.py bench <module under scripts.benchmarks> [args]
}


def say(message: str) -> None:
    print(f"[run.py] {message}", flush=True)


def venv_python(path: Path) -> Path:
    return path / BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_venv(path: Path) -> Path:
    python = venv_python(path)
    if not python.exists():
        say(f"creating virtual environment {path.name}/")
        venv.EnvBuilder(with_pip=True, clear=path.exists()).create(path)
    return python


def run(cmd: list[str], **kwargs: object) -> None:
    result = subprocess.run(cmd, cwd=ROOT, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise SystemExit(f"[run.py] command failed ({result.returncode}): {' '.join(map(str, cmd))}")


def site_packages(python: Path) -> Path:
    out = subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    return Path(out.decode().strip())


def bootstrap() -> Path:
    if sys.version_info < (3, 11):
        raise SystemExit(f"Python ≥ 3.11 is required; this is {sys.version.split()[0]}. Run it with python3.11 or newer.")
    python = ensure_venv(VENV)
    lock_digest = hashlib.sha256((ROOT / "pdm.lock").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text().strip() != lock_digest:
        tools_python = ensure_venv(TOOLS_VENV)
        pdm = TOOLS_VENV / BIN / "pdm"
        if not pdm.exists():
            say("installing pdm (the project's package manager)")
            run([str(tools_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "-r", str(ROOT / "scripts/bootstrap/requirements-pdm.txt")])
        say("installing the locked packages from pdm.lock (first run takes a minute or two)")
        env = {**os.environ, "PDM_CHECK_UPDATE": "false", "PDM_NON_INTERACTIVE": "1"}
        env.pop("VIRTUAL_ENV", None)
        run([str(pdm), "use", "--quiet", "-f", str(python)], env=env)
        run([str(pdm), "sync", "--quiet", "-G", ":all", "--no-self"], env=env)
        # Make the repository's packages (services, scripts, libs) importable from the venv.
        (site_packages(python) / "huleedu_local.pth").write_text(f"{ROOT}\n{ROOT / 'libs'}\n")
        STAMP.write_text(lock_digest)
    return python


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help", "help"} or argv[0] not in {*COMMANDS, "bootstrap"}:
        print(__doc__)
        return 0 if argv and argv[0] in {"-h", "--help", "help"} else 2
    python = bootstrap()
    command, rest = argv[0], argv[1:]
    if command == "bootstrap":
        say(f"ready: {python}")
        return 0
    if command == "bench":
        if not rest:
            raise SystemExit("usage: python3 run.py bench <benchmark> [args]; benchmarks are in scripts/benchmarks/")
        args = ["-m", f"scripts.benchmarks.{rest[0]}", *rest[1:]]
    else:
        args = [*COMMANDS[command], *rest]  # type: ignore[misc]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "libs")])}
    os.chdir(ROOT)
    if os.name == "nt":
        return subprocess.call([str(python), *args], env=env)
    os.execve(str(python), [str(python), *args], env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
