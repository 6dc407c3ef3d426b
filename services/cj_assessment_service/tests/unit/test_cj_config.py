"""Settings of the CJ Assessment Service: prefix, defaults by where it runs, readable errors."""

from __future__ import annotations

import pytest

from huleedu_service_libs.settings import SettingsError, load_settings
from services.cj_assessment_service.config import CJAssessmentServiceSettings


def test_defaults_outside_containers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HULEEDU_IN_CONTAINER", raising=False)
    settings = CJAssessmentServiceSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.port == 9095
    assert settings.sqlalchemy_url == "postgresql+asyncpg://huleedu:huleedu@localhost:5434/huleedu_cj_assessment"
    assert settings.content_service_url == "http://localhost:8001"
    assert settings.content_token is None


def test_defaults_in_compose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HULEEDU_IN_CONTAINER", "1")
    settings = CJAssessmentServiceSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.sqlalchemy_url == "postgresql+asyncpg://huleedu:huleedu@cj_assessment_db:5432/huleedu_cj_assessment"
    assert settings.content_service_url == "http://content_service:8001"


def test_environment_variables_use_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CJ_ASSESSMENT_SERVICE_CONTENT_SERVICE_URL", "http://content:9000/")
    monkeypatch.setenv("CJ_ASSESSMENT_SERVICE_CONTENT_SERVICE_TOKEN", " secret ")
    monkeypatch.setenv("CJ_ASSESSMENT_SERVICE_CONTENT_MAX_ATTEMPTS", "2")
    settings = CJAssessmentServiceSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.content_service_url == "http://content:9000"
    assert settings.content_token == "secret"
    assert settings.content_retry_policy.max_attempts == 2


def test_invalid_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CJ_ASSESSMENT_SERVICE_CONTENT_SERVICE_URL", "content:8001")
    monkeypatch.setenv("CJ_ASSESSMENT_SERVICE_PORT", "99999")
    with pytest.raises(SettingsError) as caught:
        load_settings(CJAssessmentServiceSettings, _env_file=None)
    assert "CJ_ASSESSMENT_SERVICE_CONTENT_SERVICE_URL" in str(caught.value)
    assert "CJ_ASSESSMENT_SERVICE_PORT" in str(caught.value)
