"""Service layer of batches: idempotent submission, status, comparison log, cancel, results.

Submission validates everything a client can get wrong before anything is written
(essay count and ids, judge override, metadata, storage ids that must exist), stores
inline texts through the Content Service, and only then writes the batch row with its
student items in one transaction. ``batch_id`` is the client's idempotency key: the
request's SHA-256 fingerprint decides whether a repeated submission is the same request
(200, the existing batch) or a different one under a taken id (409).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from huleedu_service_libs.errors import ConflictError, NotFoundError, ValidationError
from huleedu_service_libs.jsonb import find_unstorable_text
from huleedu_service_libs.logging_setup import get_logger
from services.cj_assessment_service import assignments_logic
from services.cj_assessment_service.cj_core_logic.judging import (
    JudgeCallError,
    JudgeSettings,
    merge_judge_settings,
    metadata_request_options,
)
from services.cj_assessment_service.cj_core_logic.results import results_csv
from services.cj_assessment_service.protocols import (
    AnchorRepositoryProtocol,
    AssignmentRepositoryProtocol,
    ContentClientProtocol,
)
from services.cj_assessment_service.protocols_batches import (
    TERMINAL_STATUSES,
    BatchItem,
    BatchRecord,
    BatchRepositoryProtocol,
    ComparisonRecord,
    NewBatch,
    NewBatchItem,
)

logger = get_logger(__name__)

CONTENT_CONCURRENCY = 10


@dataclass(frozen=True)
class EssaySubmission:
    essay_id: str
    text: str | None = None
    storage_id: str | None = None


@dataclass(frozen=True)
class BatchSubmission:
    batch_id: str
    assignment_id: str
    essays: list[EssaySubmission]
    max_comparisons: int | None = None
    judge: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    seed: int | None = None


@dataclass(frozen=True)
class BatchPolicy:
    """The service settings that shape a submission."""

    judge_defaults: JudgeSettings
    allowed_judge_base_urls: tuple[str, ...] = ()
    default_comparisons_per_essay: int = 10
    max_comparisons_limit: int = 100_000
    max_essays: int = 5_000


@dataclass(frozen=True)
class SubmissionResult:
    batch: BatchRecord
    created: bool


@dataclass(frozen=True)
class ComparisonLog:
    batch: BatchRecord
    items: list[BatchItem]
    comparisons: list[ComparisonRecord]


# --------------------------------------------------------------------------- submission


def request_fingerprint(submission: BatchSubmission) -> str:
    """SHA-256 over everything the client sent that shapes the batch (texts by their hash)."""
    canonical = {
        "assignment_id": submission.assignment_id,
        "essays": [
            {"essay_id": e.essay_id, "text_sha256": hashlib.sha256(e.text.encode("utf-8")).hexdigest()}
            if e.text is not None
            else {"essay_id": e.essay_id, "storage_id": e.storage_id}
            for e in submission.essays
        ],
        "max_comparisons": submission.max_comparisons,
        "judge": submission.judge or None,
        "metadata": submission.metadata or {},
        "seed": submission.seed,
    }
    encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def default_seed(batch_id: str) -> int:
    return int.from_bytes(hashlib.sha256(batch_id.encode("utf-8")).digest()[:7], "big")


def _check_essays(submission: BatchSubmission, policy: BatchPolicy) -> None:
    count = len(submission.essays)
    if count < 2:
        raise ValidationError(
            f"A batch needs at least two student essays to compare; got {count}.",
            details={"field": "essays", "count": count},
        )
    if count > policy.max_essays:
        raise ValidationError(
            f"A batch holds at most {policy.max_essays} essays; got {count}.",
            details={"field": "essays", "count": count, "limit": policy.max_essays},
        )
    seen: set[str] = set()
    duplicates: list[str] = []
    for essay in submission.essays:
        if essay.essay_id in seen and essay.essay_id not in duplicates:
            duplicates.append(essay.essay_id)
        seen.add(essay.essay_id)
    if duplicates:
        raise ValidationError(
            f"Essay ids must be unique within a batch; repeated: {', '.join(duplicates[:20])}.",
            details={"field": "essays", "duplicate_essay_ids": duplicates},
        )
    if submission.max_comparisons is not None and submission.max_comparisons > policy.max_comparisons_limit:
        raise ValidationError(
            f"max_comparisons may be at most {policy.max_comparisons_limit}; got {submission.max_comparisons}.",
            details={"field": "max_comparisons", "limit": policy.max_comparisons_limit},
        )


def resolve_judge_settings(policy: BatchPolicy, override: Mapping[str, Any] | None) -> JudgeSettings:
    """The batch's judge: the service defaults with the batch's override, validated (→ 422)."""
    if override and "api_key" in override:
        raise ValidationError(
            "Per-batch API keys are not accepted (they would be stored with the batch). Configure the key on "
            "the service: CJ_ASSESSMENT_SERVICE_JUDGE_API_KEY, or OPENAI_API_KEY / ANTHROPIC_API_KEY.",
            details={"field": "judge.api_key"},
        )
    requested_url = (override or {}).get("base_url")
    if requested_url is not None and requested_url != policy.judge_defaults.base_url:
        # Essays (and any key) go wherever base_url points: only operator-approved servers.
        allowed = policy.allowed_judge_base_urls
        if not isinstance(requested_url, str) or not any(requested_url.startswith(prefix) for prefix in allowed):
            raise ValidationError(
                "judge.base_url is not on the service's allow-list; list the server's URL prefix in "
                "CJ_ASSESSMENT_SERVICE_JUDGE_BATCH_BASE_URLS, or configure it as CJ_ASSESSMENT_SERVICE_JUDGE_BASE_URL.",
                details={"field": "judge.base_url", "allowed_prefixes": list(allowed)},
            )
    try:
        return merge_judge_settings(policy.judge_defaults, override)
    except pydantic.ValidationError as exc:
        problems = [
            {
                "field": "judge." + ".".join(str(part) for part in err["loc"]) if err["loc"] else "judge",
                "problem": err["msg"],
                "type": err["type"],
            }
            for err in exc.errors(include_url=False, include_input=False)
        ]
        fields = ", ".join(dict.fromkeys(p["field"] for p in problems))
        raise ValidationError(f"Invalid judge settings: check {fields}.", details={"errors": problems}) from None


_API_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


def _check_judge_credentials(settings: JudgeSettings) -> None:
    """An LLM judge needs a key from somewhere; say so at submission rather than at the first call."""
    env_var = _API_KEY_ENV.get(settings.kind)
    if env_var is None:
        return
    from services.cj_assessment_service.implementations.judges._sdk_support import resolve_api_key

    try:
        resolve_api_key(settings, env_var)
    except ValueError as exc:
        raise ValidationError(f"The judge cannot be used: {exc}.", details={"field": "judge"}) from None


def _check_storable(value: Any, field: str) -> None:
    """A 422 instead of a failed insert for text PostgreSQL cannot store."""
    problem = find_unstorable_text(value)
    if problem == "nul":
        raise ValidationError(f"Field '{field}' must not contain NUL characters (\\u0000).", details={"field": field})
    if problem == "surrogate":
        raise ValidationError(f"Field '{field}' contains an unpaired surrogate.", details={"field": field})


def _check_metadata(metadata: dict[str, Any], settings: JudgeSettings) -> None:
    _check_storable(metadata, "metadata")
    serialised = json.dumps(metadata, ensure_ascii=False)
    try:
        metadata_request_options(settings.metadata_transport, metadata)
    except JudgeCallError as exc:
        raise ValidationError(
            f"Field 'metadata' is too large to travel with judge requests: {exc.message}",
            details={"field": "metadata", "bytes": len(serialised.encode("utf-8"))},
        ) from None


async def _check_storage_ids(content: ContentClientProtocol, essays: list[EssaySubmission]) -> None:
    referenced = [e for e in essays if e.storage_id is not None]
    if not referenced:
        return
    semaphore = asyncio.Semaphore(CONTENT_CONCURRENCY)

    async def exists(essay: EssaySubmission) -> bool:
        async with semaphore:
            return await content.exists(essay.storage_id)  # type: ignore[arg-type]

    found = await asyncio.gather(*(exists(e) for e in referenced))
    unknown = [{"essay_id": e.essay_id, "storage_id": e.storage_id} for e, ok in zip(referenced, found) if not ok]
    if unknown:
        listing = ", ".join(f"{u['essay_id']} ({u['storage_id']})" for u in unknown[:20])
        raise ValidationError(
            f"{len(unknown)} storage id(s) are unknown to the Content Service: {listing}.",
            details={"field": "essays", "unknown_storage_ids": unknown},
        )


async def _store_texts(content: ContentClientProtocol, submission: BatchSubmission) -> list[NewBatchItem]:
    semaphore = asyncio.Semaphore(CONTENT_CONCURRENCY)

    async def store(essay: EssaySubmission) -> NewBatchItem:
        if essay.storage_id is not None:
            return NewBatchItem(essay.essay_id, essay.storage_id)
        async with semaphore:
            storage_id = await content.store_text(
                essay.text or "",
                metadata={"kind": "student_essay", "batch_id": submission.batch_id, "essay_id": essay.essay_id},
            )
        return NewBatchItem(essay.essay_id, storage_id)

    return list(await asyncio.gather(*(store(e) for e in submission.essays)))


def _same_or_conflict(existing: BatchRecord, fingerprint: str) -> SubmissionResult:
    if existing.request_fingerprint == fingerprint:
        return SubmissionResult(existing, created=False)
    raise ConflictError(
        f"Batch {existing.batch_id!r} already exists with different content; resubmit the same request to get "
        "it, or use a new batch_id.",
        details={"batch_id": existing.batch_id, "status": existing.status},
    )


async def submit_batch(
    *,
    batches: BatchRepositoryProtocol,
    assignments: AssignmentRepositoryProtocol,
    anchors: AnchorRepositoryProtocol,
    content: ContentClientProtocol,
    policy: BatchPolicy,
    submission: BatchSubmission,
    on_created: Callable[[], None] | None = None,
) -> SubmissionResult:
    _check_essays(submission, policy)
    _check_storable(submission.judge, "judge")
    judge_settings = resolve_judge_settings(policy, submission.judge)
    metadata = dict(submission.metadata or {})
    _check_metadata(metadata, judge_settings)
    fingerprint = request_fingerprint(submission)

    existing = await batches.get(submission.batch_id)
    if existing is not None:
        return _same_or_conflict(existing, fingerprint)

    assignment = await assignments_logic.get_assignment(assignments, submission.assignment_id)
    _check_judge_credentials(judge_settings)
    await _check_storage_ids(content, submission.essays)
    students = await _store_texts(content, submission)

    max_comparisons = submission.max_comparisons
    if max_comparisons is None:
        n_anchors = sum(
            1 for a in await anchors.list_for_assignment(assignment.assignment_id)
            if a.grade_scale == assignment.grade_scale
        )
        max_comparisons = math.ceil((len(students) + n_anchors) * policy.default_comparisons_per_essay / 2)
    record, created = await batches.create(
        NewBatch(
            batch_id=submission.batch_id,
            assignment_id=assignment.assignment_id,
            request_fingerprint=fingerprint,
            max_comparisons=max_comparisons,
            judge_override=dict(submission.judge) if submission.judge else None,
            judge_settings=judge_settings.public_dict(),
            metadata=metadata,
            seed=submission.seed if submission.seed is not None else default_seed(submission.batch_id),
            students=students,
        )
    )
    if not created:  # a concurrent identical submission won the race
        return _same_or_conflict(record, fingerprint)
    logger.info(
        "batch_submitted", batch_id=record.batch_id, assignment_id=record.assignment_id,
        students=len(students), budget=max_comparisons, judge=judge_settings.kind,
    )
    if on_created is not None:
        on_created()
    return SubmissionResult(record, created=True)


# --------------------------------------------------------------------------- reading


async def get_batch(batches: BatchRepositoryProtocol, batch_id: str) -> BatchRecord:
    record = await batches.get(batch_id)
    if record is None:
        raise NotFoundError(f"No batch {batch_id!r}.", details={"batch_id": batch_id})
    return record


async def list_batches(
    batches: BatchRepositoryProtocol, *, assignment_id: str | None, limit: int
) -> list[BatchRecord]:
    return await batches.list(assignment_id=assignment_id, limit=limit)


async def comparison_log(batches: BatchRepositoryProtocol, batch_id: str) -> ComparisonLog:
    record = await get_batch(batches, batch_id)
    return ComparisonLog(record, await batches.items(record.pk), await batches.comparisons(record.pk))


async def cancel_batch(batches: BatchRepositoryProtocol, batch_id: str) -> BatchRecord:
    record = await batches.cancel(batch_id)
    if record is None:
        raise NotFoundError(f"No batch {batch_id!r}.", details={"batch_id": batch_id})
    if record.status != "cancelled":
        raise ConflictError(
            f"Batch {batch_id!r} is already {record.status} and cannot be cancelled.",
            details={"batch_id": batch_id, "status": record.status},
        )
    logger.info("batch_cancelled", batch_id=batch_id)
    return record


async def batch_results(batches: BatchRepositoryProtocol, batch_id: str) -> tuple[BatchRecord, dict[str, Any]]:
    record = await get_batch(batches, batch_id)
    results = await batches.results(record.pk) if record.status == "completed" else None
    if results is None:
        if record.status in TERMINAL_STATUSES:
            message = f"Batch {batch_id!r} ended {record.status} ({record.stop_reason or 'no reason'}); it has no results."
        else:
            message = f"Results of batch {batch_id!r} are not ready yet: it is {record.status}."
        raise ConflictError(
            message, details={"batch_id": batch_id, "status": record.status, "error": record.error}
        )
    return record, results


async def batch_results_csv(batches: BatchRepositoryProtocol, batch_id: str) -> str:
    _, results = await batch_results(batches, batch_id)
    return results_csv(results)
