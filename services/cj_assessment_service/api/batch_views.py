"""JSON shapes of batches and their comparison log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.cj_assessment_service.batches_logic import ComparisonLog
from services.cj_assessment_service.cj_core_logic.results import not_an_assessor_note
from services.cj_assessment_service.protocols_batches import BatchItem, BatchRecord

API_PREFIX = "/api/v1/batches"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def judge_summary(record: BatchRecord) -> dict[str, Any]:
    """Which judge the batch uses: as built (after preparation) or as configured (before)."""
    if record.judge_info:
        name = record.judge_info.get("name")
        model = record.judge_info.get("model")
        is_assessor = record.judge_info.get("is_assessor")
    else:
        name = record.judge_settings.get("kind")
        model = record.judge_settings.get("model")
        is_assessor = name in ("openai", "anthropic")
    return {
        "name": name,
        "model": model,
        "is_assessor": is_assessor,
        "note": not_an_assessor_note(name, is_assessor),
    }


def batch_json(record: BatchRecord) -> dict[str, Any]:
    attempted = record.comparisons_done + record.comparisons_failed
    self_url = f"{API_PREFIX}/{record.batch_id}"
    return {
        "batch_id": record.batch_id,
        "assignment_id": record.assignment_id,
        "status": record.status,
        "progress": {
            "comparisons_done": record.comparisons_done,
            "comparisons_failed": record.comparisons_failed,
            "comparisons_queued": record.comparisons_queued,
            "budget": record.max_comparisons,
            "fraction_of_budget": round(attempted / record.max_comparisons, 4) if record.max_comparisons else 0.0,
            "round": record.current_round,
        },
        "essays": {"students": record.n_students, "anchors": record.n_anchors},
        "stop_reason": record.stop_reason,
        "error": record.error,
        "judge": judge_summary(record),
        "judge_settings": record.judge_settings,
        "metadata": record.metadata,
        "results_available": record.has_results,
        "created_at": _iso(record.created_at),
        "started_at": _iso(record.started_at),
        "updated_at": _iso(record.updated_at),
        "completed_at": _iso(record.completed_at),
        "links": {
            "self": self_url,
            "comparisons": f"{self_url}/comparisons",
            "results": f"{self_url}/results",
            "results_csv": f"{self_url}/results.csv",
            "cancel": f"{self_url}/cancel",
        },
    }


def _essay_ref(item: BatchItem | None, index: int) -> dict[str, Any]:
    if item is None:
        return {"item_index": index, "essay_id": None, "is_anchor": None}
    return {
        "item_index": index,
        "essay_id": item.essay_ref,
        "is_anchor": item.is_anchor,
        "anchor_grade": item.anchor_grade,
    }


def comparison_log_json(log: ComparisonLog) -> dict[str, Any]:
    items = {item.item_index: item for item in log.items}
    rows = []
    for c in log.comparisons:
        first, second = items.get(c.first_item), items.get(c.second_item)
        winner = items.get(c.winner_item) if c.winner_item is not None else None
        rows.append(
            {
                "round": c.round,
                "slot": c.slot,
                "status": c.status,
                "essay_a": _essay_ref(first, c.first_item),  # shown first
                "essay_b": _essay_ref(second, c.second_item),  # shown second
                "shown_first": first.essay_ref if first else None,
                "winner": winner.essay_ref if winner else None,
                "winner_item_index": c.winner_item,
                "winner_position": c.winner_position,
                "confidence": c.confidence,
                "justification": c.justification,
                "judge": {"name": c.judge_name, "model": c.judge_model},
                "latency_ms": c.latency_ms,
                "prompt_tokens": c.prompt_tokens,
                "completion_tokens": c.completion_tokens,
                "cost_usd": c.cost_usd,
                "attempts": c.attempts,
                "error": c.error,
                "raw_replies": c.raw_replies,
                "created_at": _iso(c.created_at),
                "judged_at": _iso(c.judged_at),
            }
        )
    record = log.batch
    return {
        "batch_id": record.batch_id,
        "status": record.status,
        "counts": {
            "total": len(rows),
            "done": sum(1 for r in rows if r["status"] == "done"),
            "failed": sum(1 for r in rows if r["status"] == "failed"),
            "queued": sum(1 for r in rows if r["status"] == "queued"),
        },
        "comparisons": rows,
    }


def results_json(record: BatchRecord, results: dict[str, Any]) -> dict[str, Any]:
    return {
        **results,
        "status": record.status,
        "created_at": _iso(record.created_at),
        "started_at": _iso(record.started_at),
        "completed_at": _iso(record.completed_at),
    }
