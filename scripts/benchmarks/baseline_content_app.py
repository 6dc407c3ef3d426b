"""The bare baseline the Content Service is measured against (issue 2, benchmark).

The minimum any such service needs: Quart on uvicorn with uvloop and httptools, a raw
asyncpg pool, and the same SQL as the service — ``INSERT … ON CONFLICT DO NOTHING
RETURNING`` (then ``SELECT`` of the existing row) for uploads, one ``SELECT`` for
downloads, on the same ``stored_content`` table. No DI, no ORM, no metrics, no logging,
no validation beyond "not empty".

    python -m scripts.benchmarks.baseline_content_app --database-url postgresql://… --port 8101

(or BASELINE_DATABASE_URL / BASELINE_PORT in the environment). The table must exist:
start the Content Service once on the same database, which migrates it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import uuid

INSERT_SQL = """
INSERT INTO stored_content (content_id, content_data, content_size, content_type, sha256)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT ON CONSTRAINT uq_stored_content_sha256_type DO NOTHING
RETURNING content_id
"""
SELECT_EXISTING_SQL = "SELECT content_id FROM stored_content WHERE sha256 = $1 AND content_type = $2"
SELECT_SQL = "SELECT content_type, content_data FROM stored_content WHERE content_id = $1"


def plain_postgres_url(url: str) -> str:
    """asyncpg wants postgresql://; accept the SQLAlchemy spelling too."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme.startswith("postgres") else url


def create_app(database_url: str, pool_size: int = 20):
    import asyncpg
    from quart import Quart, Response, request

    app = Quart(__name__)
    state: dict = {}

    def json_response(payload: dict, status: int) -> Response:
        return Response(json.dumps(payload), status=status, content_type="application/json")

    @app.before_serving
    async def _open_pool() -> None:
        state["pool"] = await asyncpg.create_pool(plain_postgres_url(database_url), min_size=pool_size, max_size=pool_size)

    @app.after_serving
    async def _close_pool() -> None:
        await state["pool"].close()

    @app.post("/v1/content")
    async def upload() -> Response:
        body = await request.get_data(cache=False)
        if not body:
            return json_response({"error": "empty body"}, 400)
        content_type = request.headers.get("Content-Type") or "application/octet-stream"
        sha256 = hashlib.sha256(body).hexdigest()
        async with state["pool"].acquire() as connection:
            storage_id = await connection.fetchval(
                INSERT_SQL, uuid.uuid4().hex, body, len(body), content_type, sha256
            )
            created = storage_id is not None
            if not created:
                storage_id = await connection.fetchval(SELECT_EXISTING_SQL, sha256, content_type)
        payload = {
            "storage_id": storage_id,
            "content_size": len(body),
            "content_type": content_type,
            "sha256": sha256,
        }
        return json_response(payload, 201 if created else 200)

    @app.get("/v1/content/<storage_id>")
    async def download(storage_id: str) -> Response:
        async with state["pool"].acquire() as connection:
            row = await connection.fetchrow(SELECT_SQL, storage_id.lower())
        if row is None:
            return json_response({"error": "not found"}, 404)
        return Response(row["content_data"], status=200, content_type=row["content_type"])

    @app.get("/healthz")
    async def healthz() -> Response:
        async with state["pool"].acquire() as connection:
            await connection.fetchval("SELECT 1")
        return json_response({"status": "ok"}, 200)

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BASELINE_DATABASE_URL"))
    parser.add_argument("--host", default=os.environ.get("BASELINE_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("BASELINE_PORT", "8101")))
    parser.add_argument("--pool-size", type=int, default=int(os.environ.get("BASELINE_POOL_SIZE", "20")))
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or BASELINE_DATABASE_URL) is required")

    import uvicorn

    uvicorn.run(
        create_app(args.database_url, args.pool_size),
        host=args.host,
        port=args.port,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
