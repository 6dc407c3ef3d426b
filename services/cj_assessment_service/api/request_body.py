"""Reading a JSON request body into a pydantic model.

Malformed bodies (empty, not UTF-8, not JSON) are 400s; well-formed JSON of the wrong
shape — an array instead of an object, a wrong type, a blank or missing field — is a
422 that names every offending field.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import pydantic
from quart import request

from huleedu_service_libs.errors import BadRequestError, ValidationError
from huleedu_service_libs.quart_app import validate_model

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)


async def read_json(*, allow_empty: bool = False) -> Any:
    raw = await request.get_data(cache=True)
    if not raw.strip():
        if allow_empty:
            return None
        raise BadRequestError("Request body is empty; send a JSON object.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"Request body is not valid UTF-8 (byte {exc.start}).") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequestError(
            f"Request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None


async def parse_body(model: type[ModelT], *, allow_empty: bool = False) -> ModelT:
    data = await read_json(allow_empty=allow_empty)
    if data is None and allow_empty:
        data = {}
    if not isinstance(data, dict):
        fields = ", ".join(model.model_fields)
        raise ValidationError(
            f"Request body must be a JSON object with the fields {fields}; got a JSON {_json_type(data)}.",
            details={"errors": [{"field": "(body)", "problem": "must be a JSON object", "type": "model_type"}]},
        )
    return validate_model(model, data)


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null"
