"""The docker compose stack, validated by parsing (no Docker engine on these machines).

Checks what `docker compose up` relies on: the services, their images/builds,
ports, named volumes, health checks, start-up order, and that every environment
variable given to a service is a real setting of that service (prefix + field).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from services.cj_assessment_service.config import CJAssessmentServiceSettings
from services.content_service.config import ContentServiceSettings

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {
    "content_service": (ContentServiceSettings, "CONTENT_SERVICE_"),
    "cj_assessment_service": (CJAssessmentServiceSettings, "CJ_ASSESSMENT_SERVICE_"),
}
DATABASES = {
    "content_service": ("content_service_db", "huleedu_content", 5445),
    "cj_assessment_service": ("cj_assessment_db", "huleedu_cj_assessment", 5434),
}
SERVICE_PORTS = {"content_service": 8001, "cj_assessment_service": 9095}
NON_SETTING_ENV = {"HULEEDU_IN_CONTAINER"}  # read by huleedu_service_libs.settings.running_in_container


def load(name: str) -> dict:
    with (ROOT / name).open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="module")
def infra() -> dict:
    return load("docker-compose.infrastructure.yml")


@pytest.fixture(scope="module")
def app() -> dict:
    return load("docker-compose.yml")


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def default_of(value: str) -> str:
    """``${VAR:-default}`` → default; plain values unchanged."""
    match = re.fullmatch(r"\$\{[A-Z0-9_]+:-([^}]*)\}", value)
    return match.group(1) if match else value


def host_ports(service: dict) -> dict[int, int]:
    out = {}
    for entry in service.get("ports") or []:
        host, _, container = str(entry).rpartition(":")
        out[int(container)] = int(host.rpartition(":")[2])
    return out


def test_infrastructure_has_two_postgres15_databases_with_volumes_and_healthchecks(infra: dict) -> None:
    services = infra["services"]
    assert set(services) == {"content_service_db", "cj_assessment_db"}
    for owner, (name, database, port) in DATABASES.items():
        db = services[name]
        assert db["image"] == "postgres:15", owner
        assert env_of(db)["POSTGRES_DB"] == database
        assert host_ports(db) == {5432: port}
        volume, _, mount = db["volumes"][0].partition(":")
        assert mount == "/var/lib/postgresql/data"
        assert volume in (infra.get("volumes") or {}), f"{volume} must be a named volume"
        check = db["healthcheck"]
        test = " ".join(check["test"]) if isinstance(check["test"], list) else check["test"]
        assert "pg_isready" in test
        assert check.get("retries", 0) >= 3


def test_app_compose_includes_infrastructure_and_builds_both_services(app: dict) -> None:
    includes = [i if isinstance(i, str) else i.get("path") for i in app.get("include", [])]
    assert "docker-compose.infrastructure.yml" in includes
    services = app["services"]
    assert set(SETTINGS) <= set(services)
    for name in SETTINGS:
        service = services[name]
        build = service["build"]
        assert (build if isinstance(build, str) else build["context"]) == "."
        assert (ROOT / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")).exists()
        command = service["command"]
        command = command if isinstance(command, str) else " ".join(command)
        # `python -m services.<name>` runs alembic upgrade head, then serves.
        assert command == f"python -m services.{name}"
        assert (ROOT / "services" / name / "__main__.py").exists()
        assert host_ports(service) == {SERVICE_PORTS[name]: SERVICE_PORTS[name]}


def test_health_checks_hit_healthz_on_the_service_port(app: dict) -> None:
    for name, port in SERVICE_PORTS.items():
        check = app["services"][name]["healthcheck"]
        test = " ".join(check["test"]) if isinstance(check["test"], list) else check["test"]
        assert f"127.0.0.1:{port}/healthz" in test or f"localhost:{port}/healthz" in test
        assert check.get("start_period"), "migrations run before serving: give them a start period"


def test_services_wait_for_healthy_dependencies(app: dict) -> None:
    content = app["services"]["content_service"]["depends_on"]
    assert content["content_service_db"]["condition"] == "service_healthy"
    cj = app["services"]["cj_assessment_service"]["depends_on"]
    assert cj["cj_assessment_db"]["condition"] == "service_healthy"
    assert cj["content_service"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", list(SETTINGS))
def test_every_env_var_is_a_real_setting(app: dict, name: str) -> None:
    settings_cls, prefix = SETTINGS[name]
    fields = set(settings_cls.model_fields)
    for key in env_of(app["services"][name]):
        if key in NON_SETTING_ENV:
            continue
        assert key.startswith(prefix), f"{name}: {key} lacks the prefix {prefix}"
        field = key[len(prefix):].lower()
        assert field in fields, f"{name}: {key} is not a field of {settings_cls.__name__}"


@pytest.mark.parametrize("name", list(SETTINGS))
def test_env_values_validate_and_point_at_the_compose_database(app: dict, name: str, monkeypatch) -> None:
    """The compose values (defaults substituted) make valid settings that reach the right database."""
    settings_cls, prefix = SETTINGS[name]
    for key in list(os.environ):
        if key.startswith(prefix):
            monkeypatch.delenv(key)
    env = {k: default_of(v) for k, v in env_of(app["services"][name]).items()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = settings_cls(_env_file=None)
    host, database, _ = DATABASES[name]
    assert settings.database_url is None
    assert f"@{host}:5432/{database}" in settings.sqlalchemy_url
    assert settings.host == "0.0.0.0"
    assert settings.port == SERVICE_PORTS[name]
    infra = load("docker-compose.infrastructure.yml")["services"][host]
    assert default_of(env_of(infra)["POSTGRES_USER"]) == settings.db_user
    assert default_of(env_of(infra)["POSTGRES_PASSWORD"]) == settings.db_password.get_secret_value()


def test_cj_reaches_content_service_by_compose_name_with_its_token(app: dict) -> None:
    cj = env_of(app["services"]["cj_assessment_service"])
    content = env_of(app["services"]["content_service"])
    assert cj["CJ_ASSESSMENT_SERVICE_CONTENT_SERVICE_URL"] == "http://content_service:8001"
    assert cj["CJ_ASSESSMENT_SERVICE_CONTENT_SERVICE_TOKEN"] == content["CONTENT_SERVICE_API_TOKEN"]


def test_dockerfile_installs_from_pdm_lock_as_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "FROM python:3.11-slim" in text
    assert "pdm.lock" in text and "pdm sync" in text and "--prod" in text
    assert re.search(r"^USER\s+(?!root)\S+", text, re.MULTILINE), "the image must run as a non-root user"
    assert "PYTHONPATH=/app:/app/libs" in text
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert ".venv" in ignore and ".git" in ignore
