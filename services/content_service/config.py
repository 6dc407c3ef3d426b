"""Content Service settings (env prefix ``CONTENT_SERVICE_``; see .env.example)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from huleedu_service_libs.settings import ServiceSettingsBase

SERVICE_NAME = "content_service"


class ContentServiceSettings(ServiceSettingsBase):
    model_config = SettingsConfigDict(
        env_prefix="CONTENT_SERVICE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    port: int = Field(default=8001, ge=1, le=65535)
    db_name: str = "huleedu_content"
    max_content_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1,
        description="Largest request body accepted by POST /v1/content; larger ones get 413",
    )

    # A fixed pool: with overflow, every burst above the pool size opens and closes
    # connections (TCP + TLS + auth) on the hot path. Requests beyond it wait (pool_timeout).
    db_pool_size: int = Field(default=20, ge=1, le=200, description="PostgreSQL connections kept open")
    db_max_overflow: int = Field(
        default=0, ge=0, le=200, description="Extra short-lived connections allowed above the pool size"
    )

    db_pre_ping: Literal["socket", "query"] = Field(
        default="socket",
        description=(
            "How pooled connections are checked on checkout: 'socket' replaces connections the server "
            "closed without a round trip and pings only long-idle ones; 'query' is SQLAlchemy's "
            "pool_pre_ping (a query per checkout)"
        ),
    )

    _compose_db_host: str = "content_service_db"
    _local_db_port: int = 5445
