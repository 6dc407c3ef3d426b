"""Settings: URLs from parts or given whole, and start-up errors that name the variable."""

from __future__ import annotations

import pytest
from pydantic_settings import SettingsConfigDict

from huleedu_service_libs.settings import ServiceSettingsBase, SettingsError, load_settings, to_asyncpg_url


class DemoSettings(ServiceSettingsBase):
    model_config = SettingsConfigDict(env_prefix="DEMO_SVC_", env_file=None, extra="ignore")
    db_name: str = "demo_db"
    _local_db_port: int = 5999


def test_url_built_from_parts_outside_containers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_SVC_DB_USER", "u")
    monkeypatch.setenv("DEMO_SVC_DB_PASSWORD", "p@ss/word")
    settings = load_settings(DemoSettings)
    assert settings.sqlalchemy_url == "postgresql+asyncpg://u:p%40ss%2Fword@localhost:5999/demo_db"


def test_explicit_url_wins_and_gets_the_asyncpg_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_SVC_DATABASE_URL", "postgres://a@h:1/x")
    assert load_settings(DemoSettings).sqlalchemy_url == "postgresql+asyncpg://a@h:1/x"


def test_invalid_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_SVC_PORT", "not-a-port")
    with pytest.raises(SettingsError, match="DEMO_SVC_PORT"):
        load_settings(DemoSettings)


def test_only_postgres_urls_are_accepted() -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        to_asyncpg_url("mysql://x@y/z")
