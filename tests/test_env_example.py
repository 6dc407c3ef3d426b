"""`.env.example` lists every setting of both services, exactly as the settings classes define them."""

from __future__ import annotations

from scripts.gen_env_example import ENV_EXAMPLE, render, settings_classes


def test_env_example_is_up_to_date() -> None:
    assert ENV_EXAMPLE.read_text() == render(), "regenerate with: .venv/bin/python -m scripts.gen_env_example"


def test_every_setting_is_listed() -> None:
    text = ENV_EXAMPLE.read_text()
    for _title, cls in settings_classes():
        prefix = cls.model_config["env_prefix"]
        for name in cls.model_fields:
            assert f"# {prefix}{name.upper()}=" in text
