"""Request body of ``POST /api/v1/batches`` (pydantic, strict: wrong types are 422s naming the field)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.cj_assessment_service.api.schemas import EssayText, Identifier, Label

_STORAGE_ID = re.compile(r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")


def _normalise_storage_id(value: str) -> str:
    if not _STORAGE_ID.match(value):
        raise ValueError("must be a Content Service storage id: 32 hexadecimal characters (or a dashed UUID)")
    return value.replace("-", "").lower()


StorageId = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_normalise_storage_id)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class EssayBody(_Body):
    essay_id: Label
    text: EssayText | None = None
    storage_id: StorageId | None = None

    @model_validator(mode="after")
    def _text_or_storage_id(self) -> EssayBody:
        if (self.text is None) == (self.storage_id is None):
            raise ValueError("give exactly one of 'text' (the essay) or 'storage_id' (text already stored)")
        return self


class BatchBody(_Body):
    batch_id: Identifier
    assignment_id: Identifier
    essays: list[EssayBody] = Field(max_length=100_000)
    max_comparisons: int | None = Field(default=None, ge=1)
    judge: dict[str, Any] | None = Field(default=None, description="Overrides of the service's judge settings")
    metadata: dict[str, Any] | None = Field(default=None, description="Passed to every judge request and the results")
    seed: int | None = Field(default=None, ge=0, le=2**62)
