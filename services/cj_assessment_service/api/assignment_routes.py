"""Assignment routes: create/replace (PUT), get and list the assessment contexts."""

from __future__ import annotations

from dishka import FromDishka
from quart import Blueprint, Response, request
from quart_dishka import inject
from quart_schema import document_request

from huleedu_service_libs.quart_app import json_response
from services.cj_assessment_service import assignments_logic
from services.cj_assessment_service.api.request_body import parse_body
from services.cj_assessment_service.api.schemas import AssignmentBody, check_identifier
from services.cj_assessment_service.api.views import assignment_json
from services.cj_assessment_service.protocols import (
    AssignmentDraft,
    AssignmentRepositoryProtocol,
    GradeScaleRepositoryProtocol,
)

assignment_bp = Blueprint("assignments", __name__, url_prefix="/api/v1/assignments")


@assignment_bp.put("/<assignment_id>")
@document_request(AssignmentBody)
@inject
async def put_assignment(
    assignment_id: str,
    assignments: FromDishka[AssignmentRepositoryProtocol],
    scales: FromDishka[GradeScaleRepositoryProtocol],
) -> Response:
    assignment_id = check_identifier(assignment_id, "assignment_id")
    body = await parse_body(AssignmentBody)
    draft = AssignmentDraft(assignment_id=assignment_id, **body.model_dump())
    assignment, status = await assignments_logic.save_assignment(assignments, scales, draft)
    return json_response({**assignment_json(assignment), "status": status}, status=201 if status == "created" else 200)


@assignment_bp.get("/<assignment_id>")
@inject
async def get_assignment(assignment_id: str, assignments: FromDishka[AssignmentRepositoryProtocol]) -> Response:
    assignment_id = check_identifier(assignment_id, "assignment_id")
    return json_response(assignment_json(await assignments_logic.get_assignment(assignments, assignment_id)))


@assignment_bp.get("")
@inject
async def list_assignments(assignments: FromDishka[AssignmentRepositoryProtocol]) -> Response:
    course_id = request.args.get("course_id")
    if course_id is not None:
        course_id = check_identifier(course_id, "course_id")
    listed = await assignments_logic.list_assignments(assignments, course_id=course_id)
    return json_response({"assignments": [assignment_json(assignment) for assignment in listed]})
