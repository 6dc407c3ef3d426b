"""Anchor routes: idempotent registration, listing, verify/prune of an assignment's anchors, get, delete."""

from __future__ import annotations

from dishka import FromDishka
from quart import Blueprint, Response, request
from quart_dishka import inject
from quart_schema import document_request

from huleedu_service_libs.quart_app import json_response
from services.cj_assessment_service import anchors_logic
from services.cj_assessment_service.api.request_body import parse_body
from services.cj_assessment_service.api.schemas import (
    PruneBody,
    RegisterAnchorBody,
    check_identifier,
    parse_anchor_id,
    parse_bool_query,
)
from services.cj_assessment_service.api.views import anchor_json, integrity_json
from services.cj_assessment_service.config import CJAssessmentServiceSettings
from services.cj_assessment_service.protocols import (
    AnchorRepositoryProtocol,
    AssignmentRepositoryProtocol,
    ContentClientProtocol,
    GradeScaleRepositoryProtocol,
)

anchor_bp = Blueprint("anchors", __name__, url_prefix="/api/v1")


@anchor_bp.post("/anchors/register")
@document_request(RegisterAnchorBody)
@inject
async def register_anchor(
    assignments: FromDishka[AssignmentRepositoryProtocol],
    scales: FromDishka[GradeScaleRepositoryProtocol],
    anchors: FromDishka[AnchorRepositoryProtocol],
    content: FromDishka[ContentClientProtocol],
) -> Response:
    body = await parse_body(RegisterAnchorBody)
    result = await anchors_logic.register_anchor(
        assignments=assignments,
        scales=scales,
        anchors=anchors,
        content=content,
        registration=anchors_logic.AnchorRegistration(**body.model_dump()),
    )
    return json_response(
        {**anchor_json(result.anchor), "status": result.status}, status=201 if result.status == "created" else 200
    )


@anchor_bp.get("/assignments/<assignment_id>/anchors")
@inject
async def list_anchors(
    assignment_id: str,
    assignments: FromDishka[AssignmentRepositoryProtocol],
    scales: FromDishka[GradeScaleRepositoryProtocol],
    anchors: FromDishka[AnchorRepositoryProtocol],
) -> Response:
    assignment, listed = await anchors_logic.list_anchors(
        assignments=assignments,
        scales=scales,
        anchors=anchors,
        assignment_id=check_identifier(assignment_id, "assignment_id"),
    )
    return json_response(
        {
            "assignment_id": assignment.assignment_id,
            "grade_scale": assignment.grade_scale,
            "anchors": [anchor_json(anchor) for anchor in listed],
        }
    )


@anchor_bp.post("/assignments/<assignment_id>/anchors/verify")
@inject
async def verify_anchors(
    assignment_id: str,
    assignments: FromDishka[AssignmentRepositoryProtocol],
    scales: FromDishka[GradeScaleRepositoryProtocol],
    anchors: FromDishka[AnchorRepositoryProtocol],
    content: FromDishka[ContentClientProtocol],
    settings: FromDishka[CJAssessmentServiceSettings],
) -> Response:
    report = await anchors_logic.verify_anchors(
        assignments=assignments,
        scales=scales,
        anchors=anchors,
        content=content,
        assignment_id=check_identifier(assignment_id, "assignment_id"),
        concurrency=settings.content_check_concurrency,
    )
    return json_response(integrity_json(report))


@anchor_bp.post("/assignments/<assignment_id>/anchors/prune")
@document_request(PruneBody)
@inject
async def prune_anchors(
    assignment_id: str,
    assignments: FromDishka[AssignmentRepositoryProtocol],
    scales: FromDishka[GradeScaleRepositoryProtocol],
    anchors: FromDishka[AnchorRepositoryProtocol],
    content: FromDishka[ContentClientProtocol],
    settings: FromDishka[CJAssessmentServiceSettings],
) -> Response:
    query = request.args.get("dry_run")
    if query is not None:
        dry_run = parse_bool_query(query, "dry_run")
    else:
        dry_run = (await parse_body(PruneBody, allow_empty=True)).dry_run
    report = await anchors_logic.prune_anchors(
        assignments=assignments,
        scales=scales,
        anchors=anchors,
        content=content,
        assignment_id=check_identifier(assignment_id, "assignment_id"),
        dry_run=dry_run,
        concurrency=settings.content_check_concurrency,
    )
    return json_response(integrity_json(report, dry_run=dry_run))


@anchor_bp.get("/anchors/<anchor_id>")
@inject
async def get_anchor(
    anchor_id: str, anchors: FromDishka[AnchorRepositoryProtocol], content: FromDishka[ContentClientProtocol]
) -> Response:
    anchor_number = parse_anchor_id(anchor_id)
    if not parse_bool_query(request.args.get("include_text", "true"), "include_text"):
        return json_response(anchor_json(await anchors_logic.get_anchor(anchors, anchor_number)))
    anchor, essay_text = await anchors_logic.get_anchor_with_text(anchors, content, anchor_number)
    return json_response({**anchor_json(anchor), "essay_text": essay_text})


@anchor_bp.delete("/anchors/<anchor_id>")
@inject
async def delete_anchor(anchor_id: str, anchors: FromDishka[AnchorRepositoryProtocol]) -> Response:
    deleted = await anchors_logic.delete_anchor(anchors, parse_anchor_id(anchor_id))
    return json_response({"deleted": anchor_json(deleted)})
