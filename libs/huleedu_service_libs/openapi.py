"""The OpenAPI 3 document each service serves at ``GET /openapi.json``, built by quart-schema.

quart-schema is used for documentation only. Routes keep reading and validating their own
bodies (``read_json_object`` / ``validate_model`` / ``parse_body``) and mark the pydantic model
they accept with quart-schema's document-only ``document_request``; none of its ``validate_*``
decorators is used, so its ``RequestSchemaValidationError`` is never raised and our 400/422
envelopes stay as they are. Its other effects on ``init_app`` leave our answers unchanged too:
the JSON provider it installs (a pydantic fallback in ``default``) only serves ``app.json``,
which our responses never use (``json_response`` calls ``json.dumps``), and its
``make_response`` wrapper only converts pydantic/dataclass return values, while our routes and
error handlers return ``Response`` objects, which it passes through as they are. That wrapper
still costs ~14 µs per response for nothing, so ``install_openapi`` takes it off again.

Its docs UI pages (Swagger, ReDoc, Scalar) load JavaScript from a CDN, so they are switched off.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from quart import Quart
from quart_schema import QuartSchema
from quart_schema.openapi import OpenAPIProvider
from werkzeug.routing.rules import Rule

from huleedu_service_libs.errors import ErrorCode

OPENAPI_PATH = "/openapi.json"
_SCHEMA_REF = "#/components/schemas/{model}"


class ErrorDetail(BaseModel):
    code: ErrorCode
    message: str
    correlation_id: str | None
    service: str
    details: dict[str, Any] = Field(description="Machine-readable context, e.g. the invalid fields of a 422")


class ErrorEnvelope(BaseModel):
    """The one JSON error body of every service, for every 4xx and 5xx."""

    error: ErrorDetail


_ENVELOPE_SCHEMA = ErrorEnvelope.model_json_schema(ref_template=_SCHEMA_REF)
_ENVELOPE_COMPONENTS = {**_ENVELOPE_SCHEMA.pop("$defs"), "ErrorEnvelope": _ENVELOPE_SCHEMA}


def _error_response(description: str) -> dict[str, Any]:
    ref = {"$ref": _SCHEMA_REF.format(model="ErrorEnvelope")}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


class _Provider(OpenAPIProvider):
    """quart-schema's provider, plus: request bodies as ``$ref``s to named components, the
    error envelope on every operation, and ``security: []`` on the public paths."""

    public_paths: frozenset[str] = frozenset()

    def build_paths(self, rule: Rule) -> tuple[dict, dict]:
        paths, components = super().build_paths(rule)
        components.update(_ENVELOPE_COMPONENTS)
        tag = rule.endpoint.rsplit(".", 1)[0] if "." in rule.endpoint else "service"
        for operation in (op for path_item in paths.values() for op in path_item.values()):
            responses = operation["responses"] = dict(operation["responses"])
            if not any(str(status).startswith("2") for status in responses):
                responses["2XX"] = {"description": "Success (bodies are described in the README)"}
            responses.setdefault("4XX", _error_response("Client error: the JSON error envelope"))
            responses.setdefault("5XX", _error_response("Server or upstream error: the JSON error envelope"))
            operation.setdefault("tags", [tag])
            if rule.rule in self.public_paths:
                operation["security"] = []
        return paths, components

    def build_request_body(self, model: Any, source: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        body, components = super().build_request_body(model, source)
        for media in body["content"].values():
            components[model.__name__] = media["schema"]
            media["schema"] = {"$ref": _SCHEMA_REF.format(model=model.__name__)}
        fields = getattr(model, "model_fields", {})
        body["required"] = any(field.is_required() for field in fields.values())
        return body, components


def install_openapi(
    app: Quart, *, title: str, public_paths: frozenset[str], bearer_auth: bool, version: str = "0.1.0"
) -> None:
    """Serve the document at ``/openapi.json`` (add it to the public paths; no UI pages)."""
    provider = type("OpenAPIProvider", (_Provider,), {"public_paths": public_paths})
    QuartSchema(
        app,
        openapi_path=OPENAPI_PATH,
        redoc_ui_path=None,
        scalar_ui_path=None,
        swagger_ui_path=None,
        info={"title": title, "version": version},
        security_schemes={"bearer": {"type": "http", "scheme": "bearer"}} if bearer_auth else None,
        security=[{"bearer": []}] if bearer_auth else None,
        openapi_provider_class=provider,
    )
    # quart-schema set ``app.make_response`` to a wrapper that model_dumps pydantic/dataclass
    # return values; ours are all ``Response`` objects, so drop the per-response overhead.
    app.__dict__.pop("make_response", None)
