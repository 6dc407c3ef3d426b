"""Batch routes: submit (idempotent), list, status, comparison log, cancel, results (JSON and CSV)."""

from __future__ import annotations

from dishka import FromDishka
from quart import Blueprint, Response, request
from quart_dishka import inject
from quart_schema import document_request

from huleedu_service_libs.errors import ValidationError
from huleedu_service_libs.quart_app import json_response
from services.cj_assessment_service import batches_logic
from services.cj_assessment_service.api.batch_schemas import BatchBody
from services.cj_assessment_service.api.batch_views import batch_json, comparison_log_json, results_json
from services.cj_assessment_service.api.request_body import parse_body
from services.cj_assessment_service.api.schemas import check_identifier
from services.cj_assessment_service.batches_logic import BatchPolicy, BatchSubmission, EssaySubmission
from services.cj_assessment_service.cj_core_logic.worker import WorkSignal
from services.cj_assessment_service.protocols import (
    AnchorRepositoryProtocol,
    AssignmentRepositoryProtocol,
    ContentClientProtocol,
)
from services.cj_assessment_service.protocols_batches import BatchRepositoryProtocol

batch_bp = Blueprint("batches", __name__, url_prefix="/api/v1/batches")

MAX_LIST_LIMIT = 500


@batch_bp.post("")
@document_request(BatchBody)
@inject
async def submit_batch(
    batches: FromDishka[BatchRepositoryProtocol],
    assignments: FromDishka[AssignmentRepositoryProtocol],
    anchors: FromDishka[AnchorRepositoryProtocol],
    content: FromDishka[ContentClientProtocol],
    policy: FromDishka[BatchPolicy],
    signal: FromDishka[WorkSignal],
) -> Response:
    body = await parse_body(BatchBody)
    result = await batches_logic.submit_batch(
        batches=batches,
        assignments=assignments,
        anchors=anchors,
        content=content,
        policy=policy,
        submission=BatchSubmission(
            batch_id=body.batch_id,
            assignment_id=body.assignment_id,
            essays=[EssaySubmission(e.essay_id, e.text, e.storage_id) for e in body.essays],
            max_comparisons=body.max_comparisons,
            judge=body.judge,
            metadata=body.metadata,
            seed=body.seed,
        ),
        on_created=signal.notify,
    )
    return json_response(
        batch_json(result.batch),
        status=202 if result.created else 200,
        headers={"Location": f"/api/v1/batches/{result.batch.batch_id}"},
    )


@batch_bp.get("")
@inject
async def list_batches(batches: FromDishka[BatchRepositoryProtocol]) -> Response:
    assignment_id = request.args.get("assignment_id")
    if assignment_id is not None:
        check_identifier(assignment_id, "assignment_id")
    limit_text = request.args.get("limit", "50")
    # isascii(): str.isdigit() also accepts "²" and other scripts' digits, which int() rejects.
    if not (limit_text.isascii() and limit_text.isdigit() and len(limit_text) <= 6) or not 1 <= int(limit_text) <= MAX_LIST_LIMIT:
        raise ValidationError(
            f"Invalid limit: use a whole number from 1 to {MAX_LIST_LIMIT}.", details={"field": "limit"}
        )
    listed = await batches_logic.list_batches(batches, assignment_id=assignment_id, limit=int(limit_text))
    return json_response({"batches": [batch_json(record) for record in listed], "count": len(listed)})


@batch_bp.get("/<batch_id>")
@inject
async def get_batch(batch_id: str, batches: FromDishka[BatchRepositoryProtocol]) -> Response:
    record = await batches_logic.get_batch(batches, check_identifier(batch_id, "batch_id"))
    return json_response(batch_json(record))


@batch_bp.get("/<batch_id>/comparisons")
@inject
async def get_comparisons(batch_id: str, batches: FromDishka[BatchRepositoryProtocol]) -> Response:
    log = await batches_logic.comparison_log(batches, check_identifier(batch_id, "batch_id"))
    return json_response(comparison_log_json(log))


@batch_bp.post("/<batch_id>/cancel")
@inject
async def cancel_batch(batch_id: str, batches: FromDishka[BatchRepositoryProtocol]) -> Response:
    record = await batches_logic.cancel_batch(batches, check_identifier(batch_id, "batch_id"))
    return json_response(batch_json(record))


@batch_bp.get("/<batch_id>/results")
@inject
async def get_results(batch_id: str, batches: FromDishka[BatchRepositoryProtocol]) -> Response:
    batch_id = check_identifier(batch_id, "batch_id")
    output = request.args.get("format", "json").lower()
    if output == "csv":
        return _csv_response(batch_id, await batches_logic.batch_results_csv(batches, batch_id))
    if output != "json":
        raise ValidationError("Invalid format: use json or csv.", details={"field": "format"})
    record, results = await batches_logic.batch_results(batches, batch_id)
    return json_response(results_json(record, results))


@batch_bp.get("/<batch_id>/results.csv")
@inject
async def get_results_csv(batch_id: str, batches: FromDishka[BatchRepositoryProtocol]) -> Response:
    batch_id = check_identifier(batch_id, "batch_id")
    return _csv_response(batch_id, await batches_logic.batch_results_csv(batches, batch_id))


def _csv_response(batch_id: str, body: str) -> Response:
    response = Response(body, status=200, content_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{batch_id}-results.csv"'
    return response
