"""What the runner does, as async steps shared by the CLI and the demo."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from scripts.cj_experiments_runners.eng5_np import __version__
from scripts.cj_experiments_runners.eng5_np.artefacts import now_iso, runner_info, write_all, write_skeleton
from scripts.cj_experiments_runners.eng5_np.client import CJClient, ContentClient, Endpoint, items
from scripts.cj_experiments_runners.eng5_np.errors import (
    BatchFailed,
    CompletionTimeout,
    InputError,
    NotFound,
    RunnerError,
    ServiceUnavailable,
)
from scripts.cj_experiments_runners.eng5_np.inputs import Essay, EssaySet, check_grades, human_grade_for
from scripts.cj_experiments_runners.eng5_np.results import Results, agreement, normalize, pick

TERMINAL = {"completed", "failed", "cancelled"}
UPLOAD_CONCURRENCY = 8


@dataclass
class Scale:
    scale_id: str
    grades: list[str]
    below_lowest: str | None = None

    @property
    def all_grades(self) -> list[str]:
        return ([self.below_lowest] if self.below_lowest else []) + self.grades

    def describe(self) -> str:
        below = f"; below the lowest: {self.below_lowest}" if self.below_lowest else ""
        return f"{self.scale_id} ({', '.join(self.grades)}{below})"


@dataclass
class RunOutcome:
    results: Results | None = None
    agreement: dict[str, Any] | None = None
    paths: dict[str, Path] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0


class Runner:
    def __init__(self, cj: Endpoint, content: Endpoint, *, console: Console | None = None, verbose: bool = False,
                 progress: bool = True) -> None:
        self.cj = CJClient(cj, verbose=verbose)
        self.content = ContentClient(content, verbose=verbose)
        self.console = console or Console()
        self.verbose = verbose
        self.show_progress = progress

    async def aclose(self) -> None:
        await self.cj.aclose()
        await self.content.aclose()

    async def __aenter__(self) -> Runner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def say(self, message: str) -> None:
        self.console.print(message, highlight=False, soft_wrap=True)

    # ------------------------------------------------------------------ services
    async def check_services(self) -> dict[str, Any]:
        """Both services healthy, or ServiceUnavailable naming the one that is not."""
        out = {}
        for client in (self.content, self.cj):
            health = await client.health()
            out[client.endpoint.name] = {"url": client.endpoint.url, **health}
            if not health["ok"]:
                detail = health.get("error") or f"/healthz answered HTTP {health.get('status')}"
                checks = pick(health, "body.checks", default={})
                if isinstance(checks, dict) and checks:
                    detail += " (" + ", ".join(
                        f"{name}: {pick(c, 'status', default=c) if isinstance(c, dict) else c}"
                        + (f" {c['error']}" if isinstance(c, dict) and c.get("error") else "")
                        for name, c in checks.items()) + ")"
                raise ServiceUnavailable(f"the {client.endpoint.name} at {client.endpoint.url} is not healthy: "
                                         f"{detail}",
                                         hint="start the dev stack with `python3 run.py dev start` "
                                         "(or check `python3 run.py dev status`)")
        return out

    async def service_versions(self) -> dict[str, Any]:
        out = {}
        for client in (self.content, self.cj):
            health = await client.health()
            body = health.get("body") if isinstance(health.get("body"), dict) else {}
            out[client.endpoint.name] = {"url": client.endpoint.url, "healthy": health["ok"],
                                         "version": pick(body, "version", "service_version"),
                                         "health": body or health.get("error")}
        return out

    # ------------------------------------------------------------------ scales, assignments
    async def scale(self, scale_id: str) -> Scale:
        raw = await self.cj.grade_scale(scale_id)
        raw = raw.get("grade_scale", raw) if isinstance(raw, dict) else raw
        grades = pick(raw, "grades")
        if not isinstance(grades, list) or not grades:
            raise RunnerError(f"grade scale {scale_id!r} came back without a 'grades' list")
        return Scale(str(pick(raw, "scale_id", "id", default=scale_id)), [str(g) for g in grades],
                     pick(raw, "below_lowest"))

    @staticmethod
    def assignment_scale_id(assignment: dict[str, Any]) -> str:
        scale = pick(assignment, "grade_scale", "grade_scale_id", "scale_id")
        if isinstance(scale, dict):
            scale = pick(scale, "scale_id", "id")
        if not scale:
            raise RunnerError("the assignment came back without a 'grade_scale'")
        return str(scale)

    async def ensure_assignment(
        self,
        assignment_id: str,
        *,
        scale_id: str | None,
        instructions: str | None = None,
        course_id: str | None = None,
        student_prompt: str | None = None,
        judge_rubric: str | None = None,
        grades: list[str] | None = None,
        below_lowest: str | None = None,
        only_if_missing: bool = False,
    ) -> tuple[dict[str, Any], str]:
        """Create or update the assignment (and a custom scale); returns (assignment, created|updated|unchanged)."""
        if grades:
            if not scale_id:
                raise InputError("--grades needs --grade-scale SCALE_ID to name the custom scale")
            try:
                existing_scale = await self.scale(scale_id)
            except NotFound:
                existing_scale = None
            if existing_scale is None or existing_scale.grades != grades or (
                (existing_scale.below_lowest or None) != (below_lowest or None)
            ):
                await self.cj.put_grade_scale(scale_id, grades, below_lowest,
                                              description=f"custom scale created by the eng5_np runner {__version__}")
                self.say(f"grade scale {scale_id}: {'created' if existing_scale is None else 'updated'} "
                         f"({', '.join(grades)})")
        existing = await self.cj.assignment(assignment_id)
        if existing is not None and only_if_missing:
            return existing, "unchanged"
        if existing is None and not scale_id:
            raise InputError(f"assignment {assignment_id} does not exist; give --grade-scale to create it")
        desired: dict[str, Any] = {
            "grade_scale": scale_id or self.assignment_scale_id(existing or {}),
            "instructions": instructions or pick(existing or {}, "instructions")
            or "Judge which essay is the better piece of writing overall.",
        }
        for key, value in (("course_id", course_id), ("student_prompt", student_prompt),
                           ("judge_rubric", judge_rubric)):
            if value is not None:
                desired[key] = value
            elif existing is not None and pick(existing, key) is not None:
                desired[key] = pick(existing, key)
        if existing is not None and all(
            str(pick(existing, k) if k != "grade_scale" else self.assignment_scale_id(existing)) == str(v)
            for k, v in desired.items()
        ):
            return existing, "unchanged"
        return await self.cj.put_assignment(assignment_id, desired)

    # ------------------------------------------------------------------ anchors
    async def register_anchors(self, assignment_id: str, anchors: EssaySet, scale: Scale) -> dict[str, int]:
        check_grades(anchors, scale.scale_id, scale.grades)
        counts: dict[str, int] = {"created": 0, "updated": 0, "unchanged": 0}
        for essay in anchors.essays:
            reply = await self.cj.register_anchor({
                "assignment_id": assignment_id,
                "grade": essay.grade,
                "essay_text": essay.text,
                "anchor_label": essay.label,
            })
            status = str(pick(reply, "status", default="created"))
            counts[status] = counts.get(status, 0) + 1
            if self.verbose:
                self.say(f"  {essay.label:>12}  {essay.grade:>5}  {status}  {pick(reply, 'anchor_id', default='')}")
        return counts

    async def registered_anchors(self, assignment_id: str) -> list[dict[str, Any]]:
        return await self.cj.anchors(assignment_id)

    async def verify_anchors(self, assignment_id: str) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
        """(anchors checked, anchors whose content is missing, raw reply)."""
        reply = await self.cj.verify_anchors(assignment_id)
        missing = items(pick(reply, "missing", "missing_content", "dangling", "broken", default=[]), "anchors")
        checked = pick(reply, "summary.total", "checked", "total", "anchors_checked", "count")
        if checked is None:
            checked = len(items(reply, "anchors")) or len(missing)
        return int(checked), [m if isinstance(m, dict) else {"anchor_id": m} for m in missing], reply

    # ------------------------------------------------------------------ batches
    async def upload_students(self, students: EssaySet) -> dict[str, str]:
        """essay_id -> storage_id (identical texts are stored once by the Content Service)."""
        semaphore = asyncio.Semaphore(UPLOAD_CONCURRENCY)

        async def one(essay: Essay) -> tuple[str, str]:
            async with semaphore:
                return essay.essay_id, await self.content.upload_text(
                    essay.text, {"essay_id": essay.essay_id, "role": "student", "source": "eng5_np runner"})

        return dict(await asyncio.gather(*(one(e) for e in students.essays)))

    async def submit_batch(self, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        reply, status = await self.cj.submit_batch(body)
        return reply, {202: "submitted", 201: "submitted", 200: "already submitted (identical request)"}.get(
            status, str(status))

    async def await_batch(self, batch_id: str, timeout: float, poll: float = 0.5) -> dict[str, Any]:
        """Poll until the batch is completed/failed/cancelled; live progress bar; CompletionTimeout after ``timeout``."""
        started = time.monotonic()
        status = await self.cj.batch(batch_id)
        live = self.show_progress and self.console.is_terminal
        last_line = 0.0
        last_state = None
        with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=self.console,
                      disable=not live, transient=False) as progress:
            task = progress.add_task(f"batch {batch_id}", total=None, detail="")
            while True:
                state = str(pick(status, "status", default="unknown"))
                done = int(pick(status, "progress.comparisons_done", "comparisons_done", default=0) or 0)
                failed = int(pick(status, "progress.comparisons_failed", "comparisons_failed", default=0) or 0)
                budget = pick(status, "progress.budget", "progress.max_comparisons", "max_comparisons")
                detail = state + (f", {failed} failed" if failed else "")
                progress.update(task, completed=done + failed, total=budget, detail=detail)
                if not live and self.show_progress and (state != last_state or time.monotonic() - last_line > 10):
                    self.say(f"  batch {batch_id}: {state}, {done + failed}/{budget or '?'} comparisons")
                    last_line, last_state = time.monotonic(), state
                if state in TERMINAL:
                    return status
                elapsed = time.monotonic() - started
                if elapsed >= timeout:
                    raise CompletionTimeout(
                        f"batch {batch_id} is still {state} after {timeout:g}s ({done + failed}/{budget or '?'} "
                        "comparisons)",
                        hint=f"it keeps running on the service; fetch it later with --mode fetch-results "
                        f"--batch-id {batch_id}, or wait longer with --completion-timeout",
                    )
                await asyncio.sleep(min(poll, max(0.05, timeout - elapsed)))
                status = await self.cj.batch(batch_id)

    async def collect(self, batch_id: str, students: EssaySet | None) -> tuple[Results, dict[str, Any],
                                                                              list[dict[str, Any]]]:
        raw = await self.cj.results(batch_id)
        results = normalize(raw, batch_id)
        comparisons = await self.cj.comparisons(batch_id)
        if students is not None:
            by_id = {e.essay_id: e for e in students.essays}
            for essay in results.students:
                source = by_id.get(essay.essay_id)
                if source is not None:
                    essay.human_grade = human_grade_for(source, results.grades)
        return results, raw, comparisons

    # ------------------------------------------------------------------ printing
    def print_results(self, results: Results, agree: dict[str, Any] | None, *, limit: int = 60) -> None:
        table = Table(title=f"Ranking — batch {results.batch_id}", show_lines=False, title_justify="left",
                      caption="* anchor (its known grade)" if results.anchors else None, caption_justify="left")
        for column in ("rank", "essay", "score", "±SE", "comp.", "grade", "p", "confidence", "human"):
            table.add_column(column, justify="right" if column in ("rank", "score", "±SE", "comp.", "p") else "left")
        essays = results.essays
        shown = essays if len(essays) <= limit else essays[: limit - 10] + [None] + essays[-10:]
        for e in shown:
            if e is None:
                table.add_row("…", f"({len(essays) - limit} more in the report)", "", "", "", "", "", "", "")
                continue
            grade = f"[bold]{e.anchor_grade}*[/bold]" if e.is_anchor else (e.projected_grade or "–")
            table.add_row(
                str(e.rank), e.essay_id, f"{e.score:+.2f}",
                "" if e.standard_error is None else f"{e.standard_error:.2f}",
                "" if e.comparisons is None else str(e.comparisons), grade,
                "" if e.grade_probability is None else f"{e.grade_probability:.2f}",
                e.confidence or "", e.human_grade or "",
            )
        self.console.print(table)
        reliability = {k: v for k, v in (results.reliability or {}).items() if isinstance(v, float)}
        if reliability:
            self.say("reliability: " + ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in reliability.items()))
        if results.stop_reason:
            self.say(f"stop reason: {results.stop_reason}")
        if not results.projection_available:
            self.say(f"[yellow]no grades projected: {results.projection_reason}[/yellow]")
        for warning in results.warnings:
            self.say(f"[yellow]warning: {warning}[/yellow]")
        if agree:
            self.say(
                f"agreement with the human grades ({agree['students']} students): exact {agree['exact']:.0%}, "
                f"within one step {agree['within_one_step']:.0%}, "
                f"quadratic weighted kappa {agree['quadratic_weighted_kappa']:.2f}"
            )


# ---------------------------------------------------------------------- whole flows


def batch_request(
    *,
    batch_id: str,
    assignment_id: str,
    students: EssaySet,
    storage_ids: dict[str, str],
    max_comparisons: int | None,
    judge: dict[str, Any] | None,
    metadata: dict[str, Any],
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "batch_id": batch_id,
        "assignment_id": assignment_id,
        "essays": [{"essay_id": e.essay_id, "storage_id": storage_ids[e.essay_id]} for e in students.essays],
        "metadata": metadata,
    }
    if max_comparisons is not None:
        body["max_comparisons"] = max_comparisons
    if judge:
        body["judge"] = judge
    return body


async def execute(
    runner: Runner,
    *,
    assignment_id: str,
    batch_id: str,
    students: EssaySet,
    max_comparisons: int | None,
    judge: dict[str, Any] | None,
    metadata: dict[str, Any],
    output_dir: Path,
    await_completion: bool,
    completion_timeout: float,
    allow_no_anchors: bool = False,
    inputs_extra: dict[str, Any] | None = None,
) -> RunOutcome:
    started = time.monotonic()
    await runner.check_services()
    assignment = await runner.cj.require_assignment(assignment_id)
    scale = await runner.scale(runner.assignment_scale_id(assignment))
    anchors = await runner.registered_anchors(assignment_id)
    if not anchors and not allow_no_anchors:
        raise NotFound(
            f"assignment {assignment_id} has no anchors, so no grades can be projected",
            hint="register some with --mode register-anchors --anchors FILE (or pass --allow-no-anchors to rank only)",
        )
    runner.say(f"assignment {assignment_id}: scale {scale.describe()}, {len(anchors)} anchors")
    runner.say(f"uploading {len(students.essays)} student essays to the Content Service …")
    storage_ids = await runner.upload_students(students)
    body = batch_request(batch_id=batch_id, assignment_id=assignment_id, students=students, storage_ids=storage_ids,
                         max_comparisons=max_comparisons, judge=judge, metadata=metadata)
    reply, how = await runner.submit_batch(body)
    budget = pick(reply, "progress.budget", default=max_comparisons)
    runner.say(f"batch {batch_id}: {how} ({len(students.essays)} students + {len(anchors)} anchors, "
               f"budget {budget if budget is not None else 'service default'} comparisons, "
               f"judge {pick(reply, 'judge.name', default=(judge or {}).get('kind', 'service default'))})")
    run: dict[str, Any] = {
        "created_at": now_iso(),
        "mode": "execute",
        "runner": runner_info(),
        "services": await runner.service_versions(),
        "inputs": {
            "assignment_id": assignment_id,
            "assignment": assignment,
            "grade_scale": {"scale_id": scale.scale_id, "grades": scale.grades, "below_lowest": scale.below_lowest},
            "anchors": anchors,
            "students_source": students.source,
            "students": [{**e.summary(), "storage_id": storage_ids[e.essay_id]} for e in students.essays],
            "max_comparisons": max_comparisons,
            "judge": judge,
            "metadata": metadata,
            **(inputs_extra or {}),
        },
        "batch": {"request": {k: v for k, v in body.items() if k != "essays"}, "submitted": reply},
    }
    outcome = RunOutcome()
    if not await_completion:
        write_skeleton(output_dir, run)
        runner.say(f"not waiting; follow it with --mode fetch-results --batch-id {batch_id}")
        outcome.paths = {"json": output_dir / "assessment_run.json"}
        return outcome
    try:
        status = await runner.await_batch(batch_id, completion_timeout)
    except CompletionTimeout:
        write_skeleton(output_dir, {**run, "batch": {**run["batch"], "status": await runner.cj.batch(batch_id)}})
        raise
    outcome = await finish(runner, run, batch_id, status, students, output_dir)
    outcome.elapsed_s = time.monotonic() - started
    return outcome


async def finish(runner: Runner, run: dict[str, Any], batch_id: str, status: dict[str, Any],
                 students: EssaySet | None, output_dir: Path) -> RunOutcome:
    """After a terminal status: fetch results and comparisons, print them, write the artefacts."""
    state = str(pick(status, "status", default="unknown"))
    run.setdefault("batch", {})["status"] = status
    if state != "completed":
        error = pick(status, "error.message", "error", default=None)
        write_skeleton(output_dir, run)
        raise BatchFailed(f"batch {batch_id} ended {state}" + (f": {error}" if error else ""),
                          hint=f"details in {output_dir / 'assessment_run.json'}")
    results, raw, comparisons = await runner.collect(batch_id, students)
    agree = agreement(results)
    run.update({"results": raw, "comparisons": comparisons,
                "costs": results.usage or pick(raw, "usage", "cost", default=None)})
    paths = write_all(output_dir, run, results, agree)
    runner.print_results(results, agree)
    runner.say(f"report: {paths['html']}")
    runner.say(f"data:   {paths['json']}  |  {paths['csv']}")
    return RunOutcome(results=results, agreement=agree, paths=paths, status=status)
