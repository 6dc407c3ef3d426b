"""PostgreSQL repository of batches, batch items and comparisons (SQLAlchemy async + asyncpg).

Every method opens its own session and commits explicitly. Worker writes are guarded
by the lease: each one locks the batch row ``WHERE lease_owner = :me`` first and raises
``LeaseLostError`` when that finds nothing, so a worker whose lease expired (or whose
batch was cancelled) changes nothing. A comparison result is written only while its
slot is still ``queued`` and in the same transaction as the batch counters, so the
counters always equal the comparison log and nothing is counted twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Float, Integer, Select, String, Text, bindparam, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from huleedu_service_libs.database import database_errors_as_unavailable
from huleedu_service_libs.logging_setup import get_logger
from services.cj_assessment_service.models_db_batches import (
    ACTIVE_BATCH_STATUSES,
    CJBatch,
    CJBatchEssay,
    CJComparison,
)
from services.cj_assessment_service.protocols_batches import (
    BatchItem,
    BatchRecord,
    ComparisonOutcome,
    ComparisonRecord,
    Counters,
    LeaseLostError,
    NewBatch,
    NewBatchItem,
)

_CLAIM = text(
    """
    UPDATE cj_batches
       SET lease_owner = :owner,
           lease_expires_at = now() + make_interval(secs => CAST(:lease AS double precision)),
           status = CASE WHEN status = 'pending' THEN 'preparing' ELSE status END,
           started_at = COALESCE(started_at, now()),
           updated_at = now()
     WHERE id = (
           SELECT id FROM cj_batches
            WHERE status IN ('pending', 'preparing', 'comparing', 'scoring')
              AND (lease_expires_at IS NULL OR lease_expires_at < now())
            ORDER BY created_at, id
            FOR UPDATE SKIP LOCKED
            LIMIT 1)
    RETURNING id
    """
)


# In the field order of ComparisonRecord.
_COMPARISON_COLUMNS = (
    CJComparison.id, CJComparison.round, CJComparison.slot, CJComparison.first_item, CJComparison.second_item,
    CJComparison.status, CJComparison.winner_item, CJComparison.winner_position, CJComparison.confidence,
    CJComparison.justification, CJComparison.judge_name, CJComparison.judge_model, CJComparison.latency_ms,
    CJComparison.prompt_tokens, CJComparison.completion_tokens, CJComparison.cost_usd, CJComparison.error,
    CJComparison.raw_replies, CJComparison.attempts, CJComparison.created_at, CJComparison.judged_at,
)

_RECORD_OUTCOME = text(
    """
    WITH owned AS (
        SELECT id FROM cj_batches
         WHERE id = :pk AND lease_owner = :owner AND status = 'comparing'
         FOR UPDATE
    ), written AS (
        UPDATE cj_comparisons
           SET status = :status, winner_item = :winner_item, winner_position = :winner_position,
               confidence = :confidence, justification = :justification, judge_name = :judge_name,
               judge_model = :judge_model, latency_ms = :latency_ms, prompt_tokens = :prompt_tokens,
               completion_tokens = :completion_tokens, cost_usd = :cost_usd, error = :error,
               raw_replies = :raw_replies, attempts = :attempts, judged_at = now()
         WHERE id = :cid AND batch_pk = :pk AND status = 'queued' AND EXISTS (SELECT 1 FROM owned)
        RETURNING status
    )
    UPDATE cj_batches AS b
       SET comparisons_done = b.comparisons_done + (SELECT count(*) FROM written WHERE status = 'done'),
           comparisons_failed = b.comparisons_failed + (SELECT count(*) FROM written WHERE status = 'failed'),
           updated_at = now()
      FROM owned
     WHERE b.id = owned.id
    RETURNING b.comparisons_done, b.comparisons_failed, (SELECT count(*) FROM written) AS written
    """
).bindparams(
    bindparam("error", type_=JSONB),
    bindparam("raw_replies", type_=JSONB),
    bindparam("confidence", type_=Float),
    bindparam("latency_ms", type_=Float),
    bindparam("cost_usd", type_=Float),
    bindparam("winner_item", type_=Integer),
    bindparam("prompt_tokens", type_=Integer),
    bindparam("completion_tokens", type_=Integer),
    bindparam("winner_position", type_=String),
    bindparam("justification", type_=Text),
    bindparam("judge_model", type_=String),
)


logger = get_logger(__name__)


def _lease_interval(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


class PostgresBatchRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    # ------------------------------------------------------------------ reading

    @staticmethod
    def _record_select() -> Select[Any]:
        students = (
            select(func.count())
            .where(CJBatchEssay.batch_pk == CJBatch.id, CJBatchEssay.is_anchor.is_(False))
            .scalar_subquery()
        )
        anchors = (
            select(func.count())
            .where(CJBatchEssay.batch_pk == CJBatch.id, CJBatchEssay.is_anchor.is_(True))
            .scalar_subquery()
        )
        queued = (
            select(func.count())
            .where(CJComparison.batch_pk == CJBatch.id, CJComparison.status == "queued")
            .scalar_subquery()
        )
        columns = [c for c in CJBatch.__table__.columns if c.name != "results"]
        return select(
            *columns,
            students.label("n_students"),
            anchors.label("n_anchors"),
            queued.label("n_queued"),
            CJBatch.results.is_not(None).label("has_results"),
        )

    @staticmethod
    def _to_record(row: Any) -> BatchRecord:
        m = row._mapping
        return BatchRecord(
            pk=m["id"],
            batch_id=m["batch_id"],
            assignment_id=m["assignment_id"],
            status=m["status"],
            request_fingerprint=m["request_fingerprint"],
            max_comparisons=m["max_comparisons"],
            judge_override=m["judge_override"],
            judge_settings=m["judge_settings"],
            judge_info=m["judge_info"],
            metadata=m["metadata"],
            seed=m["seed"],
            comparisons_done=m["comparisons_done"],
            comparisons_failed=m["comparisons_failed"],
            comparisons_queued=int(m["n_queued"] or 0),
            current_round=m["current_round"],
            stop_reason=m["stop_reason"],
            error=m["error"],
            lease_owner=m["lease_owner"],
            lease_expires_at=m["lease_expires_at"],
            created_at=m["created_at"],
            started_at=m["started_at"],
            updated_at=m["updated_at"],
            completed_at=m["completed_at"],
            n_students=int(m["n_students"] or 0),
            n_anchors=int(m["n_anchors"] or 0),
            has_results=bool(m["has_results"]),
        )

    async def _get_by(self, session: AsyncSession, condition: Any) -> BatchRecord | None:
        row = (await session.execute(self._record_select().where(condition))).one_or_none()
        return self._to_record(row) if row is not None else None

    async def get(self, batch_id: str) -> BatchRecord | None:
        async with database_errors_as_unavailable(), self._sessions() as session:
            return await self._get_by(session, CJBatch.batch_id == batch_id)

    async def get_by_pk(self, batch_pk: int) -> BatchRecord | None:
        async with database_errors_as_unavailable(), self._sessions() as session:
            return await self._get_by(session, CJBatch.id == batch_pk)

    async def list(self, *, assignment_id: str | None, limit: int) -> list[BatchRecord]:
        stmt = self._record_select().order_by(CJBatch.created_at.desc(), CJBatch.id.desc()).limit(limit)
        if assignment_id is not None:
            stmt = stmt.where(CJBatch.assignment_id == assignment_id)
        async with database_errors_as_unavailable(), self._sessions() as session:
            rows = (await session.execute(stmt)).all()
        return [self._to_record(row) for row in rows]

    async def items(self, batch_pk: int) -> list[BatchItem]:
        stmt = (
            select(
                CJBatchEssay.item_index,
                CJBatchEssay.essay_ref,
                CJBatchEssay.is_anchor,
                CJBatchEssay.anchor_id,
                CJBatchEssay.anchor_grade,
                CJBatchEssay.storage_id,
            )
            .where(CJBatchEssay.batch_pk == batch_pk)
            .order_by(CJBatchEssay.item_index)
        )
        async with database_errors_as_unavailable(), self._sessions() as session:
            rows = (await session.execute(stmt)).all()
        return [BatchItem(*row) for row in rows]

    async def comparisons(self, batch_pk: int) -> list[ComparisonRecord]:
        stmt = (
            select(*_COMPARISON_COLUMNS)
            .where(CJComparison.batch_pk == batch_pk)
            .order_by(CJComparison.round, CJComparison.slot)
        )
        async with database_errors_as_unavailable(), self._sessions() as session:
            rows = (await session.execute(stmt)).all()
        return [ComparisonRecord(*row) for row in rows]

    async def results(self, batch_pk: int) -> dict[str, Any] | None:
        async with database_errors_as_unavailable(), self._sessions() as session:
            return (await session.execute(select(CJBatch.results).where(CJBatch.id == batch_pk))).scalar_one_or_none()

    # ------------------------------------------------------------------ API writes

    async def create(self, batch: NewBatch) -> tuple[BatchRecord, bool]:
        insert_batch = (
            pg_insert(CJBatch)
            .values(
                batch_id=batch.batch_id,
                assignment_id=batch.assignment_id,
                status="pending",
                request_fingerprint=batch.request_fingerprint,
                max_comparisons=batch.max_comparisons,
                judge_override=batch.judge_override,
                judge_settings=batch.judge_settings,
                batch_metadata=batch.metadata,
                seed=batch.seed,
            )
            .on_conflict_do_nothing(constraint="cj_batches_batch_id_key")
            .returning(CJBatch.id)
        )
        async with database_errors_as_unavailable(), self._sessions() as session:
            pk = (await session.execute(insert_batch)).scalar_one_or_none()
            if pk is None:  # the batch id is taken: the caller compares fingerprints
                existing = await self._get_by(session, CJBatch.batch_id == batch.batch_id)
                await session.commit()
                assert existing is not None
                return existing, False
            await session.execute(
                insert(CJBatchEssay),
                [
                    {
                        "batch_pk": pk,
                        "item_index": index,
                        "essay_ref": item.essay_ref,
                        "is_anchor": False,
                        "storage_id": item.storage_id,
                    }
                    for index, item in enumerate(batch.students)
                ],
            )
            record = await self._get_by(session, CJBatch.id == pk)
            await session.commit()
        assert record is not None
        return record, True

    async def cancel(self, batch_id: str) -> BatchRecord | None:
        stmt = (
            update(CJBatch)
            .where(CJBatch.batch_id == batch_id, CJBatch.status.in_(ACTIVE_BATCH_STATUSES))
            .values(
                status="cancelled",
                stop_reason="cancelled",
                lease_owner=None,
                lease_expires_at=None,
                completed_at=func.now(),
                updated_at=func.now(),
            )
        )
        async with database_errors_as_unavailable(), self._sessions() as session:
            await session.execute(stmt)
            record = await self._get_by(session, CJBatch.batch_id == batch_id)
            await session.commit()
        return record

    # ------------------------------------------------------------------ worker

    async def claim(self, owner: str, lease_seconds: float) -> BatchRecord | None:
        async with database_errors_as_unavailable(), self._sessions() as session:
            pk = (await session.execute(_CLAIM, {"owner": owner, "lease": float(lease_seconds)})).scalar_one_or_none()
            if pk is None:
                await session.commit()
                return None
            record = await self._get_by(session, CJBatch.id == pk)
            await session.commit()
        return record

    async def renew(self, batch_pk: int, owner: str, lease_seconds: float) -> bool:
        stmt = (
            update(CJBatch)
            .where(CJBatch.id == batch_pk, CJBatch.lease_owner == owner)
            .values(lease_expires_at=func.now() + _lease_interval(float(lease_seconds)))
            .returning(CJBatch.id)
        )
        async with database_errors_as_unavailable(), self._sessions() as session:
            renewed = (await session.execute(stmt)).scalar_one_or_none()
            await session.commit()
        return renewed is not None

    async def release(self, batch_pk: int, owner: str, *, retry_after_seconds: float) -> None:
        """Give the batch back; it becomes claimable again after ``retry_after_seconds``."""
        stmt = (
            update(CJBatch)
            .where(CJBatch.id == batch_pk, CJBatch.lease_owner == owner)
            .values(
                lease_owner=None,
                lease_expires_at=func.now() + _lease_interval(float(retry_after_seconds)),
                updated_at=func.now(),
            )
        )
        async with database_errors_as_unavailable(), self._sessions() as session:
            await session.execute(stmt)
            await session.commit()

    @staticmethod
    async def _lock_owned(session: AsyncSession, batch_pk: int, owner: str) -> Any:
        row = (
            await session.execute(
                select(
                    CJBatch.id,
                    CJBatch.status,
                    CJBatch.max_comparisons,
                    CJBatch.comparisons_done,
                    CJBatch.comparisons_failed,
                    CJBatch.current_round,
                )
                .where(CJBatch.id == batch_pk, CJBatch.lease_owner == owner)
                .with_for_update()
            )
        ).one_or_none()
        if row is None:
            raise LeaseLostError(f"lease on batch {batch_pk} lost")
        return row

    async def _guarded_update(self, batch_pk: int, owner: str, statuses: Sequence[str], **values: Any) -> None:
        stmt = (
            update(CJBatch)
            .where(CJBatch.id == batch_pk, CJBatch.lease_owner == owner, CJBatch.status.in_(statuses))
            .values(updated_at=func.now(), **values)
            .returning(CJBatch.id)
        )
        async with database_errors_as_unavailable(), self._sessions() as session:
            done = (await session.execute(stmt)).scalar_one_or_none()
            await session.commit()
        if done is None:
            raise LeaseLostError(f"lease on batch {batch_pk} lost (or its status changed)")

    async def start_comparing(
        self, batch_pk: int, owner: str, *, anchors: Sequence[NewBatchItem], judge_info: dict[str, Any]
    ) -> None:
        async with database_errors_as_unavailable(), self._sessions() as session:
            row = await self._lock_owned(session, batch_pk, owner)
            if row.status != "preparing":
                raise LeaseLostError(f"batch {batch_pk} is {row.status}, not preparing")
            n_students = (
                await session.execute(
                    select(func.count()).where(CJBatchEssay.batch_pk == batch_pk, CJBatchEssay.is_anchor.is_(False))
                )
            ).scalar_one()
            # A worker that died during preparation left nothing behind (one transaction), but be safe.
            await session.execute(
                CJBatchEssay.__table__.delete().where(
                    CJBatchEssay.batch_pk == batch_pk, CJBatchEssay.is_anchor.is_(True)
                )
            )
            if anchors:
                await session.execute(
                    insert(CJBatchEssay),
                    [
                        {
                            "batch_pk": batch_pk,
                            "item_index": n_students + offset,
                            "essay_ref": anchor.essay_ref,
                            "is_anchor": True,
                            "anchor_id": anchor.anchor_id,
                            "anchor_grade": anchor.anchor_grade,
                            "storage_id": anchor.storage_id,
                        }
                        for offset, anchor in enumerate(anchors)
                    ],
                )
            await session.execute(
                update(CJBatch)
                .where(CJBatch.id == batch_pk)
                .values(status="comparing", judge_info=judge_info, updated_at=func.now())
            )
            await session.commit()

    async def set_judge_info(self, batch_pk: int, owner: str, judge_info: dict[str, Any]) -> None:
        await self._guarded_update(batch_pk, owner, ACTIVE_BATCH_STATUSES, judge_info=judge_info)

    async def start_round(
        self, batch_pk: int, owner: str, *, round_number: int, pairs: Sequence[tuple[int, int]]
    ) -> list[ComparisonRecord]:
        """Insert a round's pairs as queued slots (budget-checked) and return them."""
        async with database_errors_as_unavailable(), self._sessions() as session:
            row = await self._lock_owned(session, batch_pk, owner)
            if row.status != "comparing" or row.current_round != round_number - 1:
                raise LeaseLostError(
                    f"batch {batch_pk} moved on (status {row.status}, round {row.current_round})"
                )
            # The budget is counted in slots: every slot ever created is done, failed or
            # queued, so the log itself says how much of the budget is committed. A round
            # planned from an older snapshot is trimmed to what is left, never over it.
            slots_used = (
                await session.execute(select(func.count()).where(CJComparison.batch_pk == batch_pk))
            ).scalar_one()
            room = max(0, row.max_comparisons - slots_used)
            if len(pairs) > room:
                logger.warning(
                    "round_trimmed_to_budget", batch_pk=batch_pk, round=round_number, planned=len(pairs), room=room
                )
                pairs = list(pairs)[:room]
            if not pairs:
                return []
            inserted: list[ComparisonRecord] = []
            if pairs:
                result = await session.execute(
                    insert(CJComparison).returning(*_COMPARISON_COLUMNS, sort_by_parameter_order=True),
                    [
                        {
                            "batch_pk": batch_pk,
                            "round": round_number,
                            "slot": slot,
                            "first_item": first,
                            "second_item": second,
                            "status": "queued",
                        }
                        for slot, (first, second) in enumerate(pairs)
                    ],
                )
                inserted = [ComparisonRecord(*r) for r in result.all()]
            await session.execute(
                update(CJBatch)
                .where(CJBatch.id == batch_pk)
                .values(current_round=round_number, updated_at=func.now())
            )
            await session.commit()
        return inserted

    async def record_outcome(
        self, batch_pk: int, owner: str, comparison_id: int, outcome: ComparisonOutcome
    ) -> Counters:
        """One statement: lock the batch if we own it, write the slot if still queued, bump the counters.

        A single round trip keeps the batch row locked only briefly, so many judge results
        can be written concurrently without queueing behind each other.
        """
        params = {
            "pk": batch_pk,
            "owner": owner,
            "cid": comparison_id,
            "status": outcome.status,
            "winner_item": outcome.winner_item,
            "winner_position": outcome.winner_position,
            "confidence": outcome.confidence,
            "justification": outcome.justification,
            "judge_name": outcome.judge_name,
            "judge_model": outcome.judge_model,
            "latency_ms": outcome.latency_ms,
            "prompt_tokens": outcome.prompt_tokens,
            "completion_tokens": outcome.completion_tokens,
            "cost_usd": outcome.cost_usd,
            "error": outcome.error,
            "raw_replies": outcome.raw_replies,
            "attempts": outcome.attempts,
        }
        async with database_errors_as_unavailable(), self._engine.begin() as connection:
            row = (await connection.execute(_RECORD_OUTCOME, params)).one_or_none()
        if row is None:
            raise LeaseLostError(f"lease on batch {batch_pk} lost (or it is no longer comparing)")
        return Counters(row.comparisons_done, row.comparisons_failed, written=bool(row.written))

    async def begin_scoring(self, batch_pk: int, owner: str, *, stop_reason: str) -> None:
        await self._guarded_update(batch_pk, owner, ("comparing",), status="scoring", stop_reason=stop_reason)

    async def complete(self, batch_pk: int, owner: str, *, results: dict[str, Any]) -> None:
        await self._guarded_update(
            batch_pk,
            owner,
            ("scoring",),
            status="completed",
            results=results,
            completed_at=func.now(),
            lease_owner=None,
            lease_expires_at=None,
        )

    async def fail(self, batch_pk: int, owner: str, *, error: dict[str, Any], stop_reason: str) -> None:
        await self._guarded_update(
            batch_pk,
            owner,
            ACTIVE_BATCH_STATUSES,
            status="failed",
            error=error,
            stop_reason=stop_reason,
            completed_at=func.now(),
            lease_owner=None,
            lease_expires_at=None,
        )

    async def ping(self) -> None:
        async with database_errors_as_unavailable(), self._engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
