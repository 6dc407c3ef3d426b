"""Service layer of grade scales: the built-ins from code plus custom scales from the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from huleedu_service_libs.errors import ConflictError, NotFoundError, ValidationError
from services.cj_assessment_service.cj_core_logic.grade_scales import BUILTIN_SCALES, GradeScale, make_grade_scale
from services.cj_assessment_service.protocols import GradeScaleRepositoryProtocol, WriteStatus


@dataclass(frozen=True)
class ScaleView:
    scale: GradeScale
    builtin: bool
    created_at: datetime | None = None
    updated_at: datetime | None = None


async def resolve_scale(repository: GradeScaleRepositoryProtocol, scale_id: str) -> GradeScale | None:
    builtin = BUILTIN_SCALES.get(scale_id)
    if builtin is not None:
        return builtin
    stored = await repository.get(scale_id)
    return stored.scale if stored is not None else None


async def get_scale(repository: GradeScaleRepositoryProtocol, scale_id: str) -> ScaleView:
    builtin = BUILTIN_SCALES.get(scale_id)
    if builtin is not None:
        return ScaleView(builtin, builtin=True)
    stored = await repository.get(scale_id)
    if stored is None:
        raise NotFoundError(
            f"No grade scale {scale_id!r}.",
            details={"scale_id": scale_id, "available": await available_scale_ids(repository)},
        )
    return ScaleView(stored.scale, builtin=False, created_at=stored.created_at, updated_at=stored.updated_at)


async def list_scales(repository: GradeScaleRepositoryProtocol) -> list[ScaleView]:
    builtins = [ScaleView(scale, builtin=True) for scale in BUILTIN_SCALES.values()]
    custom = [
        ScaleView(stored.scale, builtin=False, created_at=stored.created_at, updated_at=stored.updated_at)
        for stored in await repository.list()
    ]
    return builtins + custom


async def available_scale_ids(repository: GradeScaleRepositoryProtocol) -> list[str]:
    return [view.scale.scale_id for view in await list_scales(repository)]


async def save_custom_scale(
    repository: GradeScaleRepositoryProtocol,
    *,
    scale_id: str,
    grades: list[str],
    below_lowest: str | None,
    description: str,
) -> tuple[ScaleView, WriteStatus]:
    if scale_id in BUILTIN_SCALES:
        raise ConflictError(
            f"{scale_id!r} is a built-in grade scale and is read-only; create a custom scale under another id.",
            details={"scale_id": scale_id, "builtin_scales": sorted(BUILTIN_SCALES)},
        )
    try:
        scale = make_grade_scale(scale_id, grades, below_lowest=below_lowest, description=description)
    except ValueError as exc:
        raise ValidationError(f"Invalid grade scale: {exc}.", details={"field": "grades"}) from None
    stored, status = await repository.save(scale)
    return ScaleView(stored.scale, builtin=False, created_at=stored.created_at, updated_at=stored.updated_at), status
