"""Repository-wide pytest set-up: the shared fixtures (a real PostgreSQL per session)."""

pytest_plugins = ["huleedu_service_libs.testing.fixtures"]
