"""The durable batch worker: claims batches from PostgreSQL and drives them to a result.

Life of a batch (status in ``cj_batches``)::

    pending ─claim─▶ preparing ─▶ comparing ─▶ scoring ─▶ completed
                        │            │            │
                        └──────┬─────┴────────────┘
                               ▼
                       failed / cancelled

* **Claim with a lease.** A worker takes the oldest active batch whose lease is free or
  expired (``UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1)``), renews
  the lease while it works, and guards every write with ``lease_owner = me``. A killed
  process's batch is taken over once its lease expires; two workers never write to the
  same batch; a cancelled batch has no owner, so its worker's next write is refused and
  it stops.
* **Preparation** resolves the assignment's anchors (those of its current grade scale)
  and fetches every anchor and student text before any comparison. A missing anchor
  text fails the batch at once, listing each missing anchor and pointing at the anchor
  verify/prune endpoints.
* **Rounds.** Pairs come from :func:`pairing.select_pairs` on the current fit; a
  round's rows are inserted as ``queued`` and then judged concurrently (a semaphore of
  ``judge_concurrency``, a process-wide rate limit, a per-call deadline), each result
  written as it arrives (``WHERE status = 'queued'``, in the same statement as the
  counters). After a restart only the still-queued rows are judged. Rounds hold a
  multiple of the concurrency so every wave of calls is full, and the next round is
  planned while the last wave of the current one is still out, so the judge never waits
  for the worker.
* **Stopping**: the budget is spent (done + failed == max_comparisons, never more); or,
  once every item has its minimum comparisons, no score moved more than the stability
  threshold in the last round ("stable"); or no pairs are left ("no_pairs"). Failed
  comparisons are kept (with error and raw replies) and excluded from scoring; past a
  failure-rate threshold the batch fails with that reason.
* **Scoring** runs :mod:`scoring` and :mod:`projection` through :mod:`results` and
  stores the results document with the batch.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiolimiter import AsyncLimiter

from huleedu_service_libs.correlation import set_correlation_id
from huleedu_service_libs.errors import ServiceUnavailableError, UpstreamError, UpstreamTimeoutError
from huleedu_service_libs.logging_setup import get_logger
from services.cj_assessment_service.cj_core_logic import pairing, scoring
from services.cj_assessment_service.cj_core_logic.grade_scales import BUILTIN_SCALES, GradeScale
from services.cj_assessment_service.cj_core_logic.judging import (
    Judge,
    JudgeCallError,
    JudgeEssay,
    JudgeReplyError,
    JudgeRequest,
    JudgeSettings,
    JudgeVerdict,
    judge_with_reply_retries,
    merge_judge_settings,
)
from services.cj_assessment_service.cj_core_logic.results import ResultComparison, ResultItem, build_results
from services.cj_assessment_service.protocols import (
    AnchorRepositoryProtocol,
    AssignmentRepositoryProtocol,
    ContentClientProtocol,
    GradeScaleRepositoryProtocol,
)
from services.cj_assessment_service.protocols_batches import (
    BatchItem,
    BatchRecord,
    BatchRepositoryProtocol,
    ComparisonOutcome,
    ComparisonRecord,
    LeaseLostError,
    NewBatchItem,
)

logger = get_logger(__name__)

ANCHOR_REF_PREFIX = "anchor:"
ANCHOR_TOOLS_HINT = (
    "Check the assignment's anchors with POST /api/v1/assignments/{assignment_id}/anchors/verify; "
    "remove references whose content is gone with POST /api/v1/assignments/{assignment_id}/anchors/prune "
    "(then re-register those anchors), and submit the batch again under a new batch_id."
)
# Errors that mean "a dependency is away right now": the batch is handed back and retried.
TRANSIENT_ERRORS = (ServiceUnavailableError, UpstreamTimeoutError, UpstreamError)


def judge_ref(item: BatchItem) -> str:
    """The ref a judge sees for an item (never shown in a prompt; the simulated judge keys true scores by it)."""
    return f"{ANCHOR_REF_PREFIX}{item.essay_ref}" if item.is_anchor else item.essay_ref


@dataclass(frozen=True)
class WorkerSettings:
    judge_defaults: JudgeSettings
    judge_concurrency: int = 8
    rate_limit_per_second: float = 0.0  # 0: no limit
    poll_interval_seconds: float = 1.0
    lease_seconds: float = 30.0
    min_comparisons_per_essay: int = 5
    stability_threshold: float = 0.1
    failure_rate_threshold: float = 0.25
    failure_min_attempts: int = 10
    prior_sd: float = scoring.DEFAULT_PRIOR_SD
    transient_retry_seconds: float = 5.0
    content_fetch_concurrency: int = 10
    call_timeout_slack_seconds: float = 30.0


class _BatchFailed(Exception):
    """The batch cannot succeed; ``error`` is stored with it."""

    def __init__(self, stop_reason: str, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", stop_reason))
        self.stop_reason = stop_reason
        self.error = error


@dataclass
class _Context:
    """What a worker holds in memory for one claimed batch."""

    batch: BatchRecord
    items: list[BatchItem] = field(default_factory=list)
    essays: list[JudgeEssay] = field(default_factory=list)
    instructions: str = ""
    student_prompt: str | None = None
    rubric: str | None = None
    scale: GradeScale | None = None
    judge: Judge | None = None
    judge_settings: JudgeSettings | None = None
    grade_scale_id: str | None = None
    lease_lost: bool = False


class _RateLimitedJudge:
    """Applies the process-wide rate limit to every judge call (reply retries included)."""

    def __init__(self, judge: Judge, limiter: AsyncLimiter | None) -> None:
        self._judge = judge
        self._limiter = limiter
        self.name = judge.name
        self.model = judge.model
        self.is_assessor = judge.is_assessor

    async def judge(self, request: JudgeRequest) -> JudgeVerdict:
        if self._limiter is not None:
            await self._limiter.acquire()
        return await self._judge.judge(request)

    async def aclose(self) -> None:
        await self._judge.aclose()


def make_rate_limiter(per_second: float) -> AsyncLimiter | None:
    if per_second <= 0:
        return None
    if per_second >= 1:
        return AsyncLimiter(per_second, 1.0)
    return AsyncLimiter(1, 1.0 / per_second)


def round_size(n_items: int, concurrency: int) -> int:
    """A multiple of the concurrency near n_items / 2, so every wave of judge calls is full."""
    concurrency = max(1, concurrency)
    return concurrency * max(1, math.ceil(n_items / 2 / concurrency))


def default_worker_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


JudgeFactory = Callable[[JudgeSettings], Judge]


class WorkSignal:
    """Lets the API wake this process's idle workers when a batch is submitted (no poll delay)."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def notify(self) -> None:
        for listener in list(self._listeners):
            listener()


class BatchWorkerPool:
    """``worker_count`` background workers in this process, started and stopped with the app."""

    def __init__(
        self,
        *,
        batches: BatchRepositoryProtocol,
        assignments: AssignmentRepositoryProtocol,
        anchors: AnchorRepositoryProtocol,
        grade_scales: GradeScaleRepositoryProtocol,
        content: ContentClientProtocol,
        settings: WorkerSettings,
        worker_count: int,
        judge_factory: JudgeFactory | None = None,
        owner_prefix: str | None = None,
    ) -> None:
        self._batches = batches
        self._assignments = assignments
        self._anchors = anchors
        self._grade_scales = grade_scales
        self._content = content
        self._settings = settings
        self._worker_count = worker_count
        self._judge_factory = judge_factory
        self._owner_prefix = owner_prefix or default_worker_id()
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._limiter: AsyncLimiter | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._limiter = make_rate_limiter(self._settings.rate_limit_per_second)
        # Import the OpenAI SDK now (off the event loop, before the service reports ready)
        # rather than inside the first batch, where it costs a few hundred milliseconds.
        await _warm_judge_imports()
        for number in range(self._worker_count):
            owner = f"{self._owner_prefix}/{number}"
            self._tasks.append(asyncio.create_task(self._run(owner), name=f"cj-batch-worker-{number}"))
        logger.info("batch_workers_started", workers=self._worker_count, owner_prefix=self._owner_prefix)

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        logger.info("batch_workers_stopped")

    def wake(self) -> None:
        """A batch was submitted or handed back: look now instead of at the next poll."""
        self._wake.set()

    # ------------------------------------------------------------------ the loop

    async def _run(self, owner: str) -> None:
        while not self._stopping:
            try:
                batch = await self._batches.claim(owner, self._settings.lease_seconds)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("batch_claim_failed", error_type=type(exc).__name__, error=str(exc)[:300])
                batch = None
            if batch is None:
                await self._idle()
                continue
            # Other idle workers may find more work too.
            self._wake.set()
            await self._handle(batch, owner)

    async def _idle(self) -> None:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=self._settings.poll_interval_seconds)
        except TimeoutError:
            pass

    async def _handle(self, batch: BatchRecord, owner: str) -> None:
        set_correlation_id(str(uuid.uuid4()))
        log = logger.bind(batch_id=batch.batch_id, owner=owner)
        log.info("batch_claimed", status=batch.status, round=batch.current_round)
        context = _Context(batch=batch)
        work = asyncio.create_task(self._process(context, owner))
        keeper = asyncio.create_task(self._keep_lease(context, owner, work))
        try:
            await work
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():  # the pool is stopping: hand the batch back
                await self._release_quietly(batch.pk, owner, 0.0)
                raise
            if context.lease_lost:
                log.warning("batch_lease_lost")
            else:
                log.warning("batch_work_cancelled")
                await self._release_quietly(batch.pk, owner, 0.0)
        except LeaseLostError as exc:
            log.warning("batch_lease_lost", reason=str(exc))
        except _BatchFailed as failure:
            log.warning("batch_failed", stop_reason=failure.stop_reason, error=failure.error.get("message"))
            try:
                await self._batches.fail(batch.pk, owner, error=failure.error, stop_reason=failure.stop_reason)
            except LeaseLostError:
                log.warning("batch_lease_lost_before_failing")
            except Exception as exc:
                log.warning("batch_fail_write_failed", error=str(exc)[:300])
        except TRANSIENT_ERRORS as exc:
            log.warning(
                "batch_dependency_unavailable", error=getattr(exc, "message", str(exc))[:300],
                retry_in_seconds=self._settings.transient_retry_seconds,
            )
            await self._release_quietly(batch.pk, owner, self._settings.transient_retry_seconds)
        except Exception as exc:
            log.exception("batch_processing_error", error_type=type(exc).__name__)
            error = {
                "code": "internal_error",
                "message": f"Unexpected error while processing the batch: {type(exc).__name__}: {str(exc)[:500]}",
            }
            try:
                await self._batches.fail(batch.pk, owner, error=error, stop_reason="internal_error")
            except Exception:
                await self._release_quietly(batch.pk, owner, self._settings.transient_retry_seconds)
        finally:
            keeper.cancel()
            if not work.done():
                work.cancel()
            for task in (keeper, work):
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
            if context.judge is not None:
                try:
                    await context.judge.aclose()
                except Exception:
                    pass

    async def _release_quietly(self, batch_pk: int, owner: str, delay: float) -> None:
        try:
            await asyncio.shield(self._batches.release(batch_pk, owner, retry_after_seconds=delay))
        except (asyncio.CancelledError, Exception):
            pass

    async def _keep_lease(self, context: _Context, owner: str, work: asyncio.Task[None]) -> None:
        lease = self._settings.lease_seconds
        last_renewed = time.monotonic()
        while not work.done():
            await asyncio.sleep(lease / 3)
            try:
                held = await self._batches.renew(context.batch.pk, owner, lease)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The database may be back before the lease runs out; give up only then.
                logger.warning("batch_lease_renew_failed", error=str(exc)[:200])
                held = time.monotonic() - last_renewed < lease
            else:
                if held:
                    last_renewed = time.monotonic()
            if not held:
                context.lease_lost = True
                work.cancel()
                return

    # ------------------------------------------------------------------ stages

    async def _process(self, context: _Context, owner: str) -> None:
        batch = context.batch
        if batch.status == "preparing":
            await self._prepare(context, owner)
            await self._compare(context, owner)
        elif batch.status == "comparing":
            await self._load(context)
            await self._compare(context, owner)
        await self._score(context, owner)

    async def _assignment_context(self, context: _Context) -> None:
        batch = context.batch
        assignment = await self._assignments.get(batch.assignment_id)
        if assignment is None:
            raise _BatchFailed(
                "assignment_missing",
                {"code": "assignment_missing", "message": f"Assignment {batch.assignment_id!r} no longer exists."},
            )
        context.instructions = assignment.instructions
        context.student_prompt = assignment.student_prompt
        context.rubric = assignment.judge_rubric
        context.grade_scale_id = assignment.grade_scale
        context.scale = BUILTIN_SCALES.get(assignment.grade_scale)
        if context.scale is None:
            stored = await self._grade_scales.get(assignment.grade_scale)
            context.scale = stored.scale if stored is not None else None

    def _build_judge(self, context: _Context) -> Judge:
        try:
            settings = merge_judge_settings(self._settings.judge_defaults, context.batch.judge_override)
            judge = (self._judge_factory or _default_judge_factory)(settings)
        except Exception as exc:
            raise _BatchFailed(
                "judge_configuration",
                {"code": "judge_configuration", "message": f"The judge cannot be built: {exc}"},
            ) from exc
        context.judge_settings = settings
        return judge

    async def _fetch_texts(self, items: Sequence[BatchItem]) -> dict[int, str | None]:
        semaphore = asyncio.Semaphore(self._settings.content_fetch_concurrency)

        async def fetch(item: BatchItem) -> tuple[int, str | None]:
            async with semaphore:
                return item.item_index, await self._content.fetch_text(item.storage_id)

        return dict(await asyncio.gather(*(fetch(item) for item in items)))

    def _missing_content_failure(self, context: _Context, items: Sequence[BatchItem]) -> _BatchFailed:
        assignment_id = context.batch.assignment_id
        anchors = [i for i in items if i.is_anchor]
        students = [i for i in items if not i.is_anchor]
        if anchors:
            listing = "; ".join(
                f"{a.essay_ref} (grade {a.anchor_grade}, storage id {a.storage_id})" for a in anchors
            )
            return _BatchFailed(
                "anchor_content_missing",
                {
                    "code": "anchor_content_missing",
                    "message": (
                        f"{len(anchors)} anchor text(s) of assignment {assignment_id!r} are missing from the "
                        f"Content Service: {listing}."
                    ),
                    "missing_anchors": [
                        {
                            "anchor_id": a.anchor_id,
                            "label": a.essay_ref,
                            "grade": a.anchor_grade,
                            "storage_id": a.storage_id,
                        }
                        for a in anchors
                    ],
                    "missing_essays": [{"essay_id": s.essay_ref, "storage_id": s.storage_id} for s in students],
                    "hint": ANCHOR_TOOLS_HINT.format(assignment_id=assignment_id),
                },
            )
        return _BatchFailed(
            "essay_content_missing",
            {
                "code": "essay_content_missing",
                "message": (
                    f"{len(students)} student essay text(s) are missing from the Content Service: "
                    + ", ".join(f"{s.essay_ref} ({s.storage_id})" for s in students)
                    + "."
                ),
                "missing_essays": [{"essay_id": s.essay_ref, "storage_id": s.storage_id} for s in students],
            },
        )

    def _set_items(self, context: _Context, items: list[BatchItem], texts: dict[int, str | None]) -> None:
        context.items = items
        context.essays = [JudgeEssay(judge_ref(item), texts[item.item_index] or "") for item in items]

    async def _prepare(self, context: _Context, owner: str) -> None:
        batch = context.batch
        await self._assignment_context(context)
        scale_id = context.grade_scale_id
        students = [item for item in await self._batches.items(batch.pk) if not item.is_anchor]
        anchor_refs = [
            anchor
            for anchor in await self._anchors.list_for_assignment(batch.assignment_id)
            if anchor.grade_scale == scale_id
        ]
        anchors = [
            BatchItem(
                item_index=len(students) + offset,
                essay_ref=anchor.anchor_label,
                is_anchor=True,
                anchor_id=anchor.anchor_id,
                anchor_grade=anchor.grade,
                storage_id=anchor.storage_id,
            )
            for offset, anchor in enumerate(anchor_refs)
        ]
        items = students + anchors
        texts = await self._fetch_texts(items)
        missing = [item for item in items if texts.get(item.item_index) is None]
        if missing:
            raise self._missing_content_failure(context, missing)
        judge = self._build_judge(context)
        context.judge = judge
        judge_info = {"name": judge.name, "model": judge.model, "is_assessor": judge.is_assessor}
        await self._batches.start_comparing(
            batch.pk,
            owner,
            anchors=[
                NewBatchItem(a.essay_ref, a.storage_id, True, a.anchor_id, a.anchor_grade) for a in anchors
            ],
            judge_info=judge_info,
        )
        self._set_items(context, items, texts)
        logger.info(
            "batch_prepared", batch_id=batch.batch_id, students=len(students), anchors=len(anchors),
            judge=judge.name, model=judge.model,
        )

    async def _load(self, context: _Context) -> None:
        """Resume a batch that was comparing: items from the database, texts from the Content Service."""
        await self._assignment_context(context)
        items = await self._batches.items(context.batch.pk)
        texts = await self._fetch_texts(items)
        missing = [item for item in items if texts.get(item.item_index) is None]
        if missing:
            raise self._missing_content_failure(context, missing)
        context.judge = self._build_judge(context)
        self._set_items(context, items, texts)

    # ------------------------------------------------------------------ comparing

    async def _compare(self, context: _Context, owner: str) -> None:
        """Judge queued comparisons with ``judge_concurrency`` calls in flight, planning rounds as needed.

        Rounds are pipelined: as soon as the last comparison of a round has been handed to
        the judge, the next round is planned (from the results so far, with the pairs still
        in flight counted as seen) while that round's final wave is still running, so the
        judge never idles between rounds.
        """
        settings = self._settings
        pk = context.batch.pk
        size = round_size(len(context.items), settings.judge_concurrency)
        judge = _RateLimitedJudge(context.judge, self._limiter)  # type: ignore[arg-type]
        slots = asyncio.Semaphore(settings.judge_concurrency)
        watch = _FailureWatch(self._failure_rate_exceeded)
        planner = _PlannerState()
        pending: deque[ComparisonRecord] = deque(
            c for c in await self._batches.comparisons(pk) if c.status == "queued"
        )
        running: set[asyncio.Task[None]] = set()
        stop_reason: str | None = None

        async def one(comparison: ComparisonRecord) -> None:
            try:
                outcome = await self._judge_one(context, judge, comparison)
            finally:
                slots.release()  # the next call may start while this result is written
            counters = await self._batches.record_outcome(pk, owner, comparison.id, outcome)
            watch.observe(counters.comparisons_done, counters.comparisons_failed, outcome.error)

        try:
            while True:
                if not pending and stop_reason is None and not watch.tripped:
                    stop_reason, planned = await self._plan_round(context, owner, planner, size, bool(running))
                    pending.extend(planned)
                if watch.tripped:
                    pending.clear()
                if not pending:
                    if not running:
                        break
                    finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    _collect(finished, running)
                    continue
                await slots.acquire()
                _collect({task for task in running if task.done()}, running)
                if watch.tripped:
                    slots.release()
                    continue
                running.add(asyncio.create_task(one(pending.popleft())))
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

        if watch.tripped:
            self._check_failure_rate(watch.done, watch.failed, watch.errors)
        batch = await self._batches.get_by_pk(pk)
        if batch is not None:
            context.batch = batch
            self._check_failure_rate(batch.comparisons_done, batch.comparisons_failed)
            if batch.comparisons_done == 0 and batch.comparisons_failed > 0:
                # Below the failure-rate minimum (small budgets) but still nothing to score:
                # "completed" with no judgement at all would look like a result.
                raise _BatchFailed(
                    "no_successful_comparisons",
                    {
                        "code": "no_successful_comparisons",
                        "message": (
                            f"All {batch.comparisons_failed} comparisons failed, so there is nothing to score; "
                            "see the comparison log for the judge's errors."
                        ),
                        "comparisons_failed": batch.comparisons_failed,
                    },
                )
        await self._batches.begin_scoring(pk, owner, stop_reason=stop_reason or "budget")
        logger.info(
            "batch_comparing_finished", batch_id=context.batch.batch_id, stop_reason=stop_reason,
            done=context.batch.comparisons_done, failed=context.batch.comparisons_failed,
        )

    async def _plan_round(
        self, context: _Context, owner: str, planner: _PlannerState, size: int, in_flight: bool
    ) -> tuple[str | None, list[ComparisonRecord]]:
        """(stop reason, []) when the batch should stop; else (None, the new round's queued rows)."""
        settings = self._settings
        planning_started = time.perf_counter()
        pk = context.batch.pk
        n_items = len(context.items)
        batch = await self._batches.get_by_pk(pk)
        if batch is None or batch.status != "comparing":
            raise LeaseLostError(f"batch {pk} is no longer comparing")
        context.batch = batch
        if not in_flight:
            self._check_failure_rate(batch.comparisons_done, batch.comparisons_failed)
        comparisons = await self._batches.comparisons(pk)
        done = [c for c in comparisons if c.status == "done"]
        queued = [c for c in comparisons if c.status == "queued"]
        # Every slot ever created is done, failed or queued: the log alone says what is committed.
        remaining = batch.max_comparisons - len(comparisons)
        if remaining <= 0:
            return "budget", []

        scores, standard_errors = await self._fit(n_items, done)
        if scores is not None:
            counts = np.bincount(
                np.array([x for c in done for x in (c.first_item, c.second_item)], dtype=np.int64),
                minlength=n_items,
            )
            previous, planner.previous_scores = planner.previous_scores, scores
            if (
                previous is not None
                and batch.current_round >= 2
                and counts.min() >= settings.min_comparisons_per_essay
            ):
                movement = float(np.max(np.abs(scores - previous)))
                if movement < settings.stability_threshold:
                    logger.info("batch_scores_stable", batch_id=batch.batch_id, max_movement=round(movement, 4))
                    return "stable", []

        # Off the event loop: judge calls are in flight and their answers must not wait on numpy.
        pairs = await asyncio.to_thread(
            pairing.select_pairs,
            n_items,
            [(c.first_item, c.second_item) for c in (*done, *queued)],
            scores,
            standard_errors,
            n_pairs=min(size, remaining),
            min_comparisons_per_item=settings.min_comparisons_per_essay,
            seed=(batch.seed + batch.current_round + 1) % (2**63),
        )
        if not pairs:
            return "no_pairs", []
        rows = await self._batches.start_round(pk, owner, round_number=batch.current_round + 1, pairs=pairs)
        logger.info(
            "batch_round_started", batch_id=batch.batch_id, round=batch.current_round + 1, pairs=len(pairs),
            still_in_flight=len(queued), planning_ms=round((time.perf_counter() - planning_started) * 1000, 1),
        )
        return None, rows

    async def _fit(
        self, n_items: int, done: Sequence[ComparisonRecord]
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(scores, standard errors) of the comparisons so far; (None, None) before the first."""
        if not done:
            return None, None
        winners, losers = _winners_losers(done)
        fit = await asyncio.to_thread(
            scoring.fit_bradley_terry, n_items, winners, losers, prior_sd=self._settings.prior_sd
        )
        return fit.scores, fit.standard_errors

    def _failure_rate_exceeded(self, done: int, failed: int) -> bool:
        attempted = done + failed
        return (
            attempted >= self._settings.failure_min_attempts
            and failed / attempted > self._settings.failure_rate_threshold
        )

    def _check_failure_rate(self, done: int, failed: int, last_errors: Sequence[dict[str, Any]] = ()) -> None:
        if self._failure_rate_exceeded(done, failed):
            attempted = done + failed
            raise _BatchFailed(
                "judge_failure_rate",
                {
                    "code": "judge_failure_rate",
                    "message": (
                        f"{failed} of {attempted} comparisons failed ({failed / attempted:.0%}), more than the "
                        f"allowed {self._settings.failure_rate_threshold:.0%}; see the comparison log for errors "
                        "and raw replies."
                    ),
                    "comparisons_failed": failed,
                    "comparisons_attempted": attempted,
                    "threshold": self._settings.failure_rate_threshold,
                    "last_errors": list(last_errors)[-5:],
                },
            )

    def _request(self, context: _Context, comparison: ComparisonRecord) -> JudgeRequest:
        return JudgeRequest(
            assignment_instructions=context.instructions,
            student_prompt=context.student_prompt,
            rubric=context.rubric,
            essay_a=context.essays[comparison.first_item],
            essay_b=context.essays[comparison.second_item],
            metadata=context.batch.metadata,
        )

    async def _judge_one(self, context: _Context, judge: Judge, comparison: ComparisonRecord) -> ComparisonOutcome:
        settings = context.judge_settings
        assert settings is not None
        deadline = (
            settings.timeout_s * (settings.max_retries + 1) * settings.max_reply_attempts
            + self._settings.call_timeout_slack_seconds
        )
        started = time.perf_counter()

        def failed(error: dict[str, Any], **extra: Any) -> ComparisonOutcome:
            return ComparisonOutcome(
                status="failed",
                winner_item=None,
                winner_position=None,
                confidence=None,
                justification=None,
                judge_name=judge.name,
                judge_model=extra.get("model") or judge.model,
                latency_ms=(time.perf_counter() - started) * 1000,
                prompt_tokens=extra.get("prompt_tokens"),
                completion_tokens=extra.get("completion_tokens"),
                cost_usd=extra.get("cost_usd"),
                error=error,
                raw_replies=extra.get("raw_replies"),
                attempts=extra.get("attempts", 1),
            )

        try:
            async with asyncio.timeout(deadline):
                verdict = await judge_with_reply_retries(
                    judge, self._request(context, comparison), max_reply_attempts=settings.max_reply_attempts
                )
        except JudgeReplyError as error:
            return failed(
                {"type": "invalid_reply", "reason": "invalid_reply", "message": error.reason},
                model=error.model,
                prompt_tokens=error.prompt_tokens,
                completion_tokens=error.completion_tokens,
                cost_usd=error.cost_usd,
                raw_replies=list(error.raw_replies),
                attempts=error.attempts,
            )
        except JudgeCallError as error:
            return failed(
                {
                    "type": "call_failed",
                    "reason": error.reason,
                    "message": error.message[:1000],
                    "status_code": error.status_code,
                    "retryable": error.retryable,
                }
            )
        except TimeoutError:
            return failed(
                {"type": "call_failed", "reason": "deadline", "message": f"no verdict within {deadline:.0f} s"}
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a judge bug must not take the batch down with it
            logger.exception("judge_unexpected_error", error_type=type(error).__name__)
            return failed(
                {"type": "judge_error", "reason": "judge_error", "message": f"{type(error).__name__}: {error}"[:1000]}
            )

        first_won = verdict.winner == "A"
        return ComparisonOutcome(
            status="done",
            winner_item=comparison.first_item if first_won else comparison.second_item,
            winner_position="first" if first_won else "second",
            confidence=verdict.confidence,
            justification=verdict.justification,
            judge_name=judge.name,
            judge_model=verdict.model,
            latency_ms=verdict.latency_ms,
            prompt_tokens=verdict.prompt_tokens,
            completion_tokens=verdict.completion_tokens,
            cost_usd=verdict.cost_usd,
            error=None,
            raw_replies=[*verdict.rejected_replies, verdict.raw_reply],
            attempts=verdict.reply_attempts,
        )

    # ------------------------------------------------------------------ scoring

    async def _score(self, context: _Context, owner: str) -> None:
        batch = await self._batches.get_by_pk(context.batch.pk)
        if batch is None or batch.status != "scoring":
            raise LeaseLostError(f"batch {context.batch.pk} is not scoring")
        context.batch = batch
        if context.grade_scale_id is None:
            await self._assignment_context(context)
        items = context.items or await self._batches.items(batch.pk)
        comparisons = await self._batches.comparisons(batch.pk)
        judge_settings = context.judge_settings
        results = await asyncio.to_thread(
            lambda: build_results(
                batch_id=batch.batch_id,
                assignment_id=batch.assignment_id,
                items=[ResultItem(i.item_index, i.essay_ref, i.is_anchor, i.anchor_id, i.anchor_grade) for i in items],
                comparisons=[
                    ResultComparison(
                        c.first_item, c.second_item, c.status, c.winner_item, c.confidence, c.latency_ms,
                        c.prompt_tokens, c.completion_tokens, c.cost_usd,
                        (c.error or {}).get("reason"), c.round,
                    )
                    for c in comparisons
                ],
                scale=context.scale,
                judge_info=batch.judge_info,
                judge_settings=(
                    judge_settings.public_dict() if isinstance(judge_settings, JudgeSettings) else batch.judge_settings
                ),
                metadata=batch.metadata,
                stop_reason=batch.stop_reason,
                max_comparisons=batch.max_comparisons,
                rounds=batch.current_round,
                prior_sd=self._settings.prior_sd,
                min_comparisons=self._settings.min_comparisons_per_essay,
                seed=batch.seed,
            ),
        )
        await self._batches.complete(batch.pk, owner, results=results)
        logger.info(
            "batch_completed", batch_id=batch.batch_id, stop_reason=batch.stop_reason,
            done=batch.comparisons_done, failed=batch.comparisons_failed,
        )


class _FailureWatch:
    """Counters as the last result write left them, and whether the failure rate tripped."""

    def __init__(self, exceeded: Callable[[int, int], bool]) -> None:
        self._exceeded = exceeded
        self.done = 0
        self.failed = 0
        self.errors: list[dict[str, Any]] = []
        self.tripped = False

    def observe(self, done: int, failed: int, error: dict[str, Any] | None) -> None:
        self.done, self.failed = done, failed
        if error is not None:
            self.errors = [*self.errors[-4:], error]
        if self._exceeded(done, failed):
            self.tripped = True


@dataclass
class _PlannerState:
    previous_scores: np.ndarray | None = None  # the fit when the previous round was planned


def _collect(finished: set[asyncio.Task[None]], running: set[asyncio.Task[None]]) -> None:
    """Forget finished judge tasks; re-raise the first failure (lease lost, database down)."""
    for task in finished:
        running.discard(task)
    for task in finished:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def _warm_judge_imports() -> None:
    import importlib

    for module in ("services.cj_assessment_service.implementations.judges.openai_judge",):
        try:
            await asyncio.to_thread(importlib.import_module, module)
        except Exception as exc:  # a missing SDK only matters to batches that ask for it
            logger.warning("judge_sdk_import_failed", module=module, error=str(exc)[:200])


def _default_judge_factory(settings: JudgeSettings) -> Judge:
    from services.cj_assessment_service.implementations.judges.factory import build_judge

    return build_judge(settings)


def _winners_losers(done: Sequence[ComparisonRecord]) -> tuple[np.ndarray, np.ndarray]:
    winners = np.array([c.winner_item for c in done], dtype=np.int64)
    losers = np.array(
        [c.second_item if c.winner_item == c.first_item else c.first_item for c in done], dtype=np.int64
    )
    return winners, losers
