from huleedu_service_libs.alembic_env import run_alembic_env
from huleedu_service_libs.settings import load_settings
from services.content_service.config import ContentServiceSettings
from services.content_service.models_db import Base

run_alembic_env(Base.metadata, lambda: load_settings(ContentServiceSettings).sqlalchemy_url)
