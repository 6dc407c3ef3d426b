"""The shared Quart wiring: envelope for every error, correlation ids, auth, health, metrics."""

from __future__ import annotations

import pytest
from quart import Quart

from huleedu_service_libs.errors import ConflictError
from huleedu_service_libs.quart_app import configure_service_app, read_json_object


def build_app(token: str | None = None, healthy: bool = True) -> Quart:
    app = Quart(__name__)

    async def health() -> dict:
        return {"database": {"status": "ok" if healthy else "unavailable"}}

    configure_service_app(app, service_name="demo", api_token=token, health_check=health)

    @app.post("/echo")
    async def echo():
        return await read_json_object()

    @app.get("/conflict")
    async def conflict():
        raise ConflictError("already there", details={"id": 1})

    @app.get("/boom")
    async def boom():
        raise RuntimeError("secret internal detail")

    return app


async def envelope(response) -> dict:
    assert response.content_type.startswith("application/json")
    body = await response.get_json()
    assert set(body["error"]) == {"code", "message", "correlation_id", "service", "details"}
    assert body["error"]["service"] == "demo"
    return body["error"]


async def test_typed_error_becomes_envelope_with_its_status() -> None:
    response = await build_app().test_client().get("/conflict")
    assert response.status_code == 409
    error = await envelope(response)
    assert error["code"] == "CONFLICT" and error["details"] == {"id": 1}


async def test_unexpected_error_is_500_envelope_without_internals() -> None:
    response = await build_app().test_client().get("/boom")
    assert response.status_code == 500
    error = await envelope(response)
    assert "secret internal detail" not in (await response.get_data(as_text=True))
    assert error["code"] == "INTERNAL_ERROR"


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [("GET", "/missing", 404, "NOT_FOUND"), ("DELETE", "/echo", 405, "METHOD_NOT_ALLOWED")],
)
async def test_framework_errors_become_envelopes(method: str, path: str, status: int, code: str) -> None:
    response = await build_app().test_client().open(path, method=method)
    assert response.status_code == status
    assert (await envelope(response))["code"] == code


@pytest.mark.parametrize(
    ("body", "fragment"),
    [(b"", "empty"), (b"[1,2]", "must be a JSON object"), (b'{"a": ', "not valid JSON"), (b"\xff\xfe{}", "UTF-8")],
)
async def test_bad_json_bodies_are_400_with_a_reason(body: bytes, fragment: str) -> None:
    response = await build_app().test_client().post("/echo", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert fragment in (await envelope(response))["message"]


async def test_correlation_id_is_echoed_or_generated() -> None:
    client = build_app().test_client()
    echoed = await client.get("/conflict", headers={"X-Correlation-ID": "my-id-1"})
    assert echoed.headers["X-Correlation-ID"] == "my-id-1"
    assert (await envelope(echoed))["correlation_id"] == "my-id-1"
    generated = await client.get("/conflict", headers={"X-Correlation-ID": "bad id; drop"})
    assert generated.headers["X-Correlation-ID"] not in {"", "bad id; drop"}
    assert len(generated.headers["X-Correlation-ID"]) == 36


async def test_auth_required_except_health_and_metrics() -> None:
    client = build_app(token="tok").test_client()
    assert (await client.get("/conflict")).status_code == 401
    assert (await client.get("/conflict", headers={"Authorization": "Bearer nope"})).status_code == 401
    assert (await client.get("/conflict", headers={"Authorization": "Bearer tok"})).status_code == 409
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/metrics")).status_code == 200


async def test_health_reports_503_when_a_check_fails() -> None:
    response = await build_app(healthy=False).test_client().get("/healthz")
    assert response.status_code == 503
    assert (await response.get_json())["checks"]["database"]["status"] == "unavailable"


async def test_metrics_count_requests_by_route_template() -> None:
    client = build_app().test_client()
    await client.get("/conflict")
    text = (await (await client.get("/metrics")).get_data(as_text=True))
    assert 'route="/conflict"' in text and 'status="409"' in text
