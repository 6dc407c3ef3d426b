"""CJ Assessment Service settings (env prefix ``CJ_ASSESSMENT_SERVICE_``; see .env.example)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from huleedu_service_libs.http_client import HttpTimeouts, RetryPolicy
from huleedu_service_libs.settings import ServiceSettingsBase, running_in_container
from services.cj_assessment_service.cj_core_logic.judging import JudgeSettings

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

    # --- Batches: judge defaults (a batch may override them in its "judge" object) ---------
    judge_kind: Literal["openai", "anthropic", "heuristic"] = Field(
        default="heuristic", description="Default judge: heuristic (offline baseline), openai, anthropic"
    )
    judge_model: str | None = Field(default=None, description="Model name; required for openai/anthropic")
    judge_base_url: str | None = Field(
        default=None, description="OpenAI-compatible base URL incl. /v1 (vLLM, Ollama, a gateway); unset: the SDK's"
    )
    judge_batch_base_urls: list[str] = Field(
        default_factory=list,
        description=(
            "URL prefixes a batch's judge.base_url may point at, as a JSON list "
            '(e.g. ["http://127.0.0.1:8000/v1"]); empty: batches use the service\'s judge URL only, '
            "so a client cannot have essays sent to a server of its choosing"
        ),
    )
    judge_api_key: SecretStr | None = Field(
        default=None, description="Judge API key; when unset OPENAI_API_KEY / ANTHROPIC_API_KEY are used"
    )
    judge_temperature: float | None = Field(default=0.0, ge=0.0, le=2.0)
    judge_max_output_tokens: int | None = Field(default=None, ge=16, description="Reply token cap (Anthropic: 1024)")
    judge_timeout_seconds: float = Field(default=60.0, gt=0, le=600, description="Per HTTP attempt of a judge call")
    judge_max_retries: int = Field(
        default=3, ge=0, le=10, description="SDK retries on timeouts, connection errors, 429 (Retry-After) and 5xx"
    )
    judge_reply_attempts: int = Field(
        default=3, ge=1, le=10, description="Attempts while a judge's reply cannot be parsed, then the comparison fails"
    )
    judge_structured_output: Literal["json_schema", "json_object", "none"] = "json_schema"
    judge_metadata_transport: Literal["header", "body", "none"] = Field(
        default="header", description="How batch metadata travels with judge requests"
    )
    judge_price_per_million_input_tokens: float | None = Field(default=None, ge=0)
    judge_price_per_million_output_tokens: float | None = Field(default=None, ge=0)

    # --- Batches: the background worker --------------------------------------------------
    judge_concurrency: int = Field(default=8, ge=1, le=256, description="Judge calls in flight per batch")
    judge_rate_limit_per_second: float = Field(
        default=0.0, ge=0, description="Judge requests per second for the whole process; 0 = no limit"
    )
    worker_count: int = Field(
        default=1, ge=0, le=32, description="Background batch workers in this process; 0 disables them"
    )
    worker_poll_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    worker_lease_seconds: float = Field(
        default=30.0, ge=1, le=3600, description="A crashed worker's batch is taken over after this long"
    )
    worker_retry_seconds: float = Field(
        default=5.0, ge=0, le=3600, description="Wait before retrying a batch whose dependency was unavailable"
    )
    min_comparisons_per_essay: int = Field(
        default=5, ge=1, le=100, description="Every essay gets this many before any gets more; stability waits for it"
    )
    default_comparisons_per_essay: int = Field(
        default=10, ge=1, le=1000, description="Budget of a batch without max_comparisons: items x this / 2"
    )
    max_comparisons_limit: int = Field(default=100_000, ge=1, description="Largest max_comparisons a batch may ask")
    max_essays_per_batch: int = Field(default=5_000, ge=2)
    stability_threshold: float = Field(
        default=0.1, ge=0, description="Stop when no score moved more than this (logits) in a round; 0 = never"
    )
    failure_rate_threshold: float = Field(
        default=0.25, ge=0, le=1, description="A batch fails when more than this share of comparisons failed"
    )
    failure_min_attempts: int = Field(default=10, ge=1, description="...counted after this many comparisons")
    prior_sd: float = Field(default=2.0, gt=0, le=100, description="SD (logits) of the Bradley-Terry Gaussian prior")

    @model_validator(mode="after")
    def _check_judge_defaults(self) -> CJAssessmentServiceSettings:
        if self.judge_kind in ("openai", "anthropic") and not (self.judge_model or "").strip():
            raise ValueError(
                f"CJ_ASSESSMENT_SERVICE_JUDGE_MODEL is required when CJ_ASSESSMENT_SERVICE_JUDGE_KIND is {self.judge_kind}"
            )
        return self

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
    def judge_defaults(self) -> JudgeSettings:
        """The service's default judge (a batch's "judge" object overrides it field by field)."""
        return JudgeSettings(
            kind=self.judge_kind,
            model=self.judge_model,
            base_url=self.judge_base_url,
            api_key=self.judge_api_key,
            temperature=self.judge_temperature,
            max_output_tokens=self.judge_max_output_tokens,
            timeout_s=self.judge_timeout_seconds,
            max_retries=self.judge_max_retries,
            max_reply_attempts=self.judge_reply_attempts,
            structured_output=self.judge_structured_output,
            metadata_transport=self.judge_metadata_transport,
            price_per_million_input_tokens=self.judge_price_per_million_input_tokens,
            price_per_million_output_tokens=self.judge_price_per_million_output_tokens,
        )

    @property
    def content_retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.content_max_attempts,
            initial_backoff=self.content_retry_initial_backoff_seconds,
            max_backoff=self.content_retry_max_backoff_seconds,
        )
