"""Checks of a service's ``/openapi.json``, shared by the services' tests."""

from __future__ import annotations

import re
from typing import Any

from quart import Quart

ENVELOPE_REF = "#/components/schemas/ErrorEnvelope"


def openapi_path(rule: str) -> str:
    """Werkzeug's ``/a/<path:b>`` in OpenAPI form: ``/a/{b}``."""
    return re.sub(r"<(?:[^:>]*:)?([^>]+)>", r"{\1}", rule)


def check_openapi_document(doc: dict[str, Any], app: Quart, *, title: str) -> None:
    """An OpenAPI 3 document naming every route of ``app``, each with the error envelope."""
    assert doc["openapi"].startswith("3.")
    # quart-schema's docs UI pages load JavaScript from a CDN: they must stay switched off.
    assert not {"swagger_ui", "redoc_ui", "scalar_ui"} & set(app.view_functions)
    assert doc["info"]["title"] == title and doc["info"]["version"]
    schemas = doc["components"]["schemas"]
    envelope = schemas["ErrorEnvelope"]
    assert envelope["required"] == ["error"]
    error = schemas[envelope["properties"]["error"]["$ref"].rsplit("/", 1)[-1]]
    assert set(error["required"]) == {"code", "message", "correlation_id", "service", "details"}

    for rule in app.url_map.iter_rules():
        if rule.endpoint in ("openapi", "static"):
            continue
        path_item = doc["paths"].get(openapi_path(rule.rule))
        assert path_item is not None, f"{rule.rule} is missing from /openapi.json"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = path_item[method.lower()]
            for status in ("4XX", "5XX"):
                assert operation["responses"][status]["content"]["application/json"]["schema"] == {
                    "$ref": ENVELOPE_REF
                }


def request_body_schema(doc: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    """The component schema a JSON request body refers to."""
    body = doc["paths"][path][method]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"]
    assert ref.startswith("#/components/schemas/")
    return doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
