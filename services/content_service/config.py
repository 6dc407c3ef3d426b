"""Content Service settings (env prefix ``CONTENT_SERVICE_``; see .env.example)."""

from __future__ import annotations

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

    _compose_db_host: str = "content_service_db"
    _local_db_port: int = 5445
