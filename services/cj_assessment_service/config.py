"""CJ Assessment Service settings (env prefix ``CJ_ASSESSMENT_SERVICE_``; see .env.example)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from huleedu_service_libs.http_client import HttpTimeouts, RetryPolicy
from huleedu_service_libs.settings import ServiceSettingsBase, running_in_container

SERVICE_NAME = "cj_assessment_service"


def _default_content_service_url() -> str:
    # In compose the Content Service is reached by its service name; locally on its dev port.
    return "http://content_service:8001" if running_in_container() else "http://localhost:8001"


class CJAssessmentServiceSettings(ServiceSettingsBase):
    model_config = SettingsConfigDict(
        env_prefix="CJ_ASSESSMENT_SERVICE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    port: int = Field(default=9095, ge=1, le=65535)
    db_name: str = "huleedu_cj_assessment"
    max_request_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="Largest request body the service reads; larger ones get 413 before they are read",
    )

    # --- Content Service client -------------------------------------------------------
    content_service_url: str = Field(
        default_factory=_default_content_service_url,
        description="Base URL of the Content Service (http://content_service:8001 in compose)",
    )
    content_service_token: SecretStr | None = Field(
        default=None, description="Bearer token for the Content Service, when it has one configured"
    )
    content_connect_timeout_seconds: float = Field(default=3.0, gt=0, le=120)
    content_read_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    content_max_attempts: int = Field(
        default=4, ge=1, le=10, description="Attempts per Content Service call (connection errors, 429, 5xx)"
    )
    content_retry_initial_backoff_seconds: float = Field(default=0.2, ge=0, le=30)
    content_retry_max_backoff_seconds: float = Field(default=5.0, ge=0, le=120)
    content_health_timeout_seconds: float = Field(
        default=2.0, gt=0, le=60, description="Timeout of the Content Service check in /healthz"
    )
    content_check_concurrency: int = Field(
        default=10, ge=1, le=100, description="Parallel existence checks when verifying or pruning anchors"
    )

    # --- Batches, judges and scoring: added with the batch pipeline ----------------------

    @field_validator("content_service_url")
    @classmethod
    def _check_content_service_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, e.g. http://localhost:8001")
        return value

    _compose_db_host: str = "cj_assessment_db"
    _local_db_port: int = 5434

    @property
    def content_token(self) -> str | None:
        if self.content_service_token is None:
            return None
        value = self.content_service_token.get_secret_value().strip()
        return value or None

    @property
    def content_timeouts(self) -> HttpTimeouts:
        return HttpTimeouts(
            connect=self.content_connect_timeout_seconds,
            read=self.content_read_timeout_seconds,
            write=self.content_read_timeout_seconds,
        )

    @property
    def content_retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.content_max_attempts,
            initial_backoff=self.content_retry_initial_backoff_seconds,
            max_backoff=self.content_retry_max_backoff_seconds,
        )
