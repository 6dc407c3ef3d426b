"""Grade scale routes: list, get, and create/replace custom scales (built-ins are read-only)."""

from __future__ import annotations

from dishka import FromDishka
from quart import Blueprint, Response
from quart_dishka import inject
from quart_schema import document_request

from huleedu_service_libs.quart_app import json_response
from services.cj_assessment_service import grade_scales_logic
from services.cj_assessment_service.api.request_body import parse_body
from services.cj_assessment_service.api.schemas import GradeScaleBody, check_identifier
from services.cj_assessment_service.api.views import scale_json
from services.cj_assessment_service.protocols import GradeScaleRepositoryProtocol

grade_scale_bp = Blueprint("grade_scales", __name__, url_prefix="/api/v1/grade-scales")


@grade_scale_bp.get("")
@inject
async def list_grade_scales(scales: FromDishka[GradeScaleRepositoryProtocol]) -> Response:
    views = await grade_scales_logic.list_scales(scales)
    return json_response({"grade_scales": [scale_json(view) for view in views]})


@grade_scale_bp.get("/<scale_id>")
@inject
async def get_grade_scale(scale_id: str, scales: FromDishka[GradeScaleRepositoryProtocol]) -> Response:
    view = await grade_scales_logic.get_scale(scales, check_identifier(scale_id, "scale_id", max_length=64))
    return json_response(scale_json(view))


@grade_scale_bp.put("/<scale_id>")
@document_request(GradeScaleBody)
@inject
async def put_grade_scale(scale_id: str, scales: FromDishka[GradeScaleRepositoryProtocol]) -> Response:
    scale_id = check_identifier(scale_id, "scale_id", max_length=64)
    body = await parse_body(GradeScaleBody)
    view, status = await grade_scales_logic.save_custom_scale(
        scales, scale_id=scale_id, grades=body.grades, below_lowest=body.below_lowest, description=body.description
    )
    return json_response({**scale_json(view), "status": status}, status=201 if status == "created" else 200)
