# One image for both services; the compose file picks the service with `command`.
#   docker build -t huleedu-cj .
#   docker run huleedu-cj python -m services.cj_assessment_service
# `python -m services.<service>` runs the service's alembic migrations, then serves.

# --- build: the locked production dependencies (pdm.lock) in /app/.venv ---------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PDM_CHECK_UPDATE=false \
    PDM_NON_INTERACTIVE=1
WORKDIR /app
COPY scripts/bootstrap/requirements-pdm.txt /tmp/requirements-pdm.txt
RUN pip install -r /tmp/requirements-pdm.txt
# pyproject has [tool.pdm] distribution = false: only the dependencies are installed (--no-self).
COPY pyproject.toml pdm.lock README.m[d] ./
RUN python -m venv /app/.venv \
    && pdm use --quiet -f /app/.venv/bin/python \
    && pdm sync --prod --no-self --no-editable --quiet \
    && find /app/.venv -name '__pycache__' -prune -exec rm -rf {} +

# --- runtime: the code, a non-root user ----------------------------------------------------
FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/app/.venv/bin:$PATH \
    PYTHONPATH=/app:/app/libs \
    HULEEDU_IN_CONTAINER=1
RUN groupadd --system --gid 10001 huleedu \
    && useradd --system --uid 10001 --gid huleedu --home-dir /app --shell /usr/sbin/nologin huleedu
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
COPY libs ./libs
COPY services ./services
USER huleedu
EXPOSE 8001 9095
# Default: the Content Service. docker-compose.yml sets the command of each service.
CMD ["python", "-m", "services.content_service"]
