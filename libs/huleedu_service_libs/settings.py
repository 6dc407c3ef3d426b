"""Settings base shared by the services (pydantic-settings, one env prefix per service).

Settings are validated when a service starts; pydantic's errors name the offending
variable, and ``load_settings`` turns them into one readable message.
"""

from __future__ import annotations

import os
from typing import Literal, TypeVar
from urllib.parse import quote

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


def running_in_container() -> bool:
    """True inside our compose stack (its Dockerfile sets HULEEDU_IN_CONTAINER=1), where
    database hosts are compose service names. Explicit, because sandboxes and CI runners
    are often containers themselves (/.dockerenv) without being our stack."""
    return os.environ.get("HULEEDU_IN_CONTAINER") == "1"


class ServiceSettingsBase(BaseSettings):
    """Fields every service has. Subclasses set ``env_prefix`` and their database defaults."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] | None = Field(
        default=None, description="json in containers, console in development when unset"
    )
    api_token: SecretStr | None = Field(
        default=None, description="When set, every route except /healthz and /metrics needs 'Bearer <token>'"
    )

    # Database: either a full URL or the parts it is built from.
    database_url: str | None = None
    db_user: str = "huleedu"
    db_password: SecretStr = SecretStr("huleedu")
    db_host: str | None = None
    db_port: int | None = None
    db_name: str = "huleedu"
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)

    # Defaults for the database host, by where the service runs.
    _compose_db_host: str = "db"
    _local_db_port: int = 5432

    @property
    def effective_log_format(self) -> Literal["json", "console"]:
        if self.log_format:
            return self.log_format
        return "json" if running_in_container() or self.environment == "production" else "console"

    @property
    def token(self) -> str | None:
        if self.api_token is None:
            return None
        value = self.api_token.get_secret_value().strip()
        return value or None

    @property
    def sqlalchemy_url(self) -> str:
        """The async SQLAlchemy URL (asyncpg driver), from DATABASE_URL or from the parts."""
        if self.database_url:
            return to_asyncpg_url(self.database_url)
        if running_in_container():
            host, port = self.db_host or self._compose_db_host, self.db_port or 5432
        else:
            host, port = self.db_host or "localhost", self.db_port or self._local_db_port
        user = quote(self.db_user, safe="")
        password = quote(self.db_password.get_secret_value(), safe="")
        return f"postgresql+asyncpg://{user}:{password}@{host}:{port}/{self.db_name}"


def to_asyncpg_url(url: str) -> str:
    """Accept postgres://, postgresql:// or postgresql+<driver>:// and use asyncpg."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"Not a database URL: {url!r}")
    if scheme in {"postgres", "postgresql"} or scheme.startswith("postgresql+"):
        return f"postgresql+asyncpg://{rest}"
    raise ValueError(f"Only PostgreSQL URLs are supported, got scheme {scheme!r}")


class SettingsError(RuntimeError):
    """Raised at start-up with one line per invalid variable."""


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load_settings(settings_cls: type[SettingsT], **overrides: object) -> SettingsT:
    try:
        return settings_cls(**overrides)
    except ValidationError as exc:
        prefix = settings_cls.model_config.get("env_prefix", "")
        lines = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            lines.append(f"  {prefix}{field.upper()}: {error['msg']}")
        raise SettingsError("Invalid configuration:\n" + "\n".join(lines)) from None
