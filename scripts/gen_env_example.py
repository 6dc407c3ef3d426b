"""Write .env.example from the settings classes, so it always lists every setting.

    .venv/bin/python -m scripts.gen_env_example

A test (tests/test_env_example.py) fails when .env.example is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_EXAMPLE = REPO_ROOT / ".env.example"

HEADER = """\
# Every setting of the two services, with its default. Copy to .env and uncomment what you
# change; real environment variables win over .env. Generated from the settings classes by
#   .venv/bin/python -m scripts.gen_env_example
# (tests/test_env_example.py fails when this file is out of date).
#
# Database: give a full *_DATABASE_URL, or the parts (*_DB_USER, *_DB_PASSWORD, *_DB_HOST,
# *_DB_PORT, *_DB_NAME). Hosts default to the compose service names inside the compose
# stack (HULEEDU_IN_CONTAINER=1) and to localhost outside it.
#
# Dev stack / tests only (not settings of a service):
# DATABASE_URL=            a PostgreSQL server for `python3 run.py dev start` / the demo
# TEST_DATABASE_URL=       a PostgreSQL server for `python3 run.py test`
# OPENAI_API_KEY=          used by the openai judge when CJ_ASSESSMENT_SERVICE_JUDGE_API_KEY is unset
# ANTHROPIC_API_KEY=       used by the anthropic judge likewise
"""


def settings_classes() -> list[tuple[str, type[BaseSettings]]]:
    from services.cj_assessment_service.config import CJAssessmentServiceSettings
    from services.content_service.config import ContentServiceSettings

    return [("Content Service", ContentServiceSettings), ("CJ Assessment Service", CJAssessmentServiceSettings)]


def render_default(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value)
    return str(value)


def render() -> str:
    lines = [HEADER]
    for title, cls in settings_classes():
        prefix = cls.model_config.get("env_prefix", "")
        lines.append(f"\n# ---- {title} ({prefix}*) ----")
        for name, field in cls.model_fields.items():
            if field.description:
                lines.append(f"# {field.description}")
            default = field.get_default(call_default_factory=True)
            lines.append(f"# {prefix}{name.upper()}={render_default(default)}")
    return "\n".join(lines) + "\n"


def main() -> int:
    ENV_EXAMPLE.write_text(render())
    print(f"wrote {ENV_EXAMPLE.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
