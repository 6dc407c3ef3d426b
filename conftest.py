"""Repository-wide pytest set-up: the shared fixtures (a real PostgreSQL per session)."""

import os

pytest_plugins = ["huleedu_service_libs.testing.fixtures"]

# The batch tests point judges at local fake LLM servers on random loopback ports; the
# services refuse batch-chosen judge URLs that are not on this allow-list.
os.environ.setdefault("CJ_ASSESSMENT_SERVICE_JUDGE_BATCH_BASE_URLS", '["http://127.0.0.1:"]')
