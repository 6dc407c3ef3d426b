"""Interfaces and records of the batch pipeline (repository of batches, items and comparisons)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

BatchStatus = Literal["pending", "preparing", "comparing", "scoring", "completed", "failed", "cancelled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


class LeaseLostError(Exception):
    """This worker no longer holds the batch's lease (expired, taken over, or cancelled): write nothing."""


@dataclass(frozen=True)
class NewBatchItem:
    essay_ref: str
    storage_id: str
    is_anchor: bool = False
    anchor_id: int | None = None
    anchor_grade: str | None = None


@dataclass(frozen=True)
class NewBatch:
    batch_id: str
    assignment_id: str
    request_fingerprint: str
    max_comparisons: int
    judge_override: dict[str, Any] | None
    judge_settings: dict[str, Any]  # public (no secrets)
    metadata: dict[str, Any]
    seed: int
    students: Sequence[NewBatchItem]


@dataclass(frozen=True)
class BatchRecord:
    pk: int
    batch_id: str
    assignment_id: str
    status: str
    request_fingerprint: str
    max_comparisons: int
    judge_override: dict[str, Any] | None
    judge_settings: dict[str, Any]
    judge_info: dict[str, Any] | None
    metadata: dict[str, Any]
    seed: int
    comparisons_done: int
    comparisons_failed: int
    comparisons_queued: int
    current_round: int
    stop_reason: str | None
    error: dict[str, Any] | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    updated_at: datetime
    completed_at: datetime | None
    n_students: int
    n_anchors: int
    has_results: bool

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class BatchItem:
    item_index: int
    essay_ref: str
    is_anchor: bool
    anchor_id: int | None
    anchor_grade: str | None
    storage_id: str


@dataclass(frozen=True)
class ComparisonRecord:
    id: int
    round: int
    slot: int
    first_item: int
    second_item: int
    status: str
    winner_item: int | None
    winner_position: str | None
    confidence: float | None
    justification: str | None
    judge_name: str | None
    judge_model: str | None
    latency_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    error: dict[str, Any] | None
    raw_replies: list[str] | None
    attempts: int
    created_at: datetime
    judged_at: datetime | None


@dataclass(frozen=True)
class ComparisonOutcome:
    """What the worker writes for one judged slot: a verdict (done) or an error (failed)."""

    status: Literal["done", "failed"]
    winner_item: int | None
    winner_position: Literal["first", "second"] | None
    confidence: float | None
    justification: str | None
    judge_name: str
    judge_model: str | None
    latency_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    error: dict[str, Any] | None
    raw_replies: list[str] | None
    attempts: int


@dataclass(frozen=True)
class Counters:
    comparisons_done: int
    comparisons_failed: int
    written: bool  # False when the slot had already been written (nothing changed)


class BatchRepositoryProtocol(Protocol):
    # --- API side ------------------------------------------------------------------
    async def create(self, batch: NewBatch) -> tuple[BatchRecord, bool]:
        """Insert the batch and its student items atomically; (existing, False) if batch_id is taken."""
        ...

    async def get(self, batch_id: str) -> BatchRecord | None: ...

    async def get_by_pk(self, batch_pk: int) -> BatchRecord | None: ...

    async def list(self, *, assignment_id: str | None, limit: int) -> list[BatchRecord]:
        """Newest first."""
        ...

    async def items(self, batch_pk: int) -> list[BatchItem]: ...

    async def comparisons(self, batch_pk: int) -> list[ComparisonRecord]: ...

    async def results(self, batch_pk: int) -> dict[str, Any] | None: ...

    async def cancel(self, batch_id: str) -> BatchRecord | None:
        """Cancel an active batch (clearing its lease); the record as it is afterwards, None if unknown."""
        ...

    # --- worker side: every write is guarded by the lease; LeaseLostError otherwise ------
    async def claim(self, owner: str, lease_seconds: float) -> BatchRecord | None: ...

    async def renew(self, batch_pk: int, owner: str, lease_seconds: float) -> bool: ...

    async def release(self, batch_pk: int, owner: str, *, retry_after_seconds: float) -> None: ...

    async def start_comparing(
        self, batch_pk: int, owner: str, *, anchors: Sequence[NewBatchItem], judge_info: dict[str, Any]
    ) -> None: ...

    async def set_judge_info(self, batch_pk: int, owner: str, judge_info: dict[str, Any]) -> None: ...

    async def start_round(
        self, batch_pk: int, owner: str, *, round_number: int, pairs: Sequence[tuple[int, int]]
    ) -> list[ComparisonRecord]:
        """Insert the round's pairs as queued slots (never beyond the budget) and return them."""
        ...

    async def record_outcome(
        self, batch_pk: int, owner: str, comparison_id: int, outcome: ComparisonOutcome
    ) -> Counters: ...

    async def begin_scoring(self, batch_pk: int, owner: str, *, stop_reason: str) -> None: ...

    async def complete(self, batch_pk: int, owner: str, *, results: dict[str, Any]) -> None: ...

    async def fail(self, batch_pk: int, owner: str, *, error: dict[str, Any], stop_reason: str) -> None: ...

    async def ping(self) -> None: ...
