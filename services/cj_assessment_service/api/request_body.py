"""Reading a JSON request body into a pydantic model.

Malformed bodies (empty, not UTF-8, not JSON, NaN/Infinity, integers too long to
convert, nesting deeper than ``MAX_JSON_DEPTH``) are 400s; well-formed JSON of the wrong
shape — an array instead of an object, a wrong type, a blank or missing field — is a
422 that names every offending field.
"""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic
from quart import request

from huleedu_service_libs.errors import BadRequestError, ValidationError
from huleedu_service_libs.quart_app import strict_json_loads, validate_model

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)

# Far beyond any real request (a batch body with nested metadata is a handful of levels),
# far below what recursive code (checks, json.dumps, jsonb) downstream can take.
MAX_JSON_DEPTH = 32


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        children = current.values() if isinstance(current, dict) else current if isinstance(current, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


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
    data = strict_json_loads(text, what="Request body")
    if _depth_exceeds(data, MAX_JSON_DEPTH):
        raise BadRequestError(f"Request body is not acceptable JSON: nested deeper than {MAX_JSON_DEPTH} levels.")
    return data


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
