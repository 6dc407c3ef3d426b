from huleedu_service_libs.alembic_env import run_alembic_env
from huleedu_service_libs.settings import load_settings
from services.cj_assessment_service.config import CJAssessmentServiceSettings
from services.cj_assessment_service.models_db import Base

# Every model module must be imported so that Base.metadata describes the whole schema
# (`alembic check` compares it with the migrated database).
import services.cj_assessment_service.models_db_batches  # noqa: E402, F401  (batches: 0003)

run_alembic_env(Base.metadata, lambda: load_settings(CJAssessmentServiceSettings).sqlalchemy_url)
