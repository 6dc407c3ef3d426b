"""The schema comes from the migrations, and 0002 repairs a database the incident left behind."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.exc import IntegrityError

from huleedu_service_libs.testing.fixtures import alembic_upgrade
from huleedu_service_libs.testing.processes import REPO_ROOT, python_path_env
from services.cj_assessment_service.tests.conftest import CJ_ALEMBIC_INI, TWELVE_GRADES, execute_sql

ASSIGNMENT = "00000000-0000-0000-0000-000000000001"
KEY_COLUMNS = ["assignment_id", "anchor_label", "grade_scale"]


async def unique_constraints(database_url: str) -> dict[str, list[str]]:
    rows = await execute_sql(
        database_url,
        """
        SELECT c.conname, array_agg(a.attname::text ORDER BY k.position) AS columns
        FROM pg_constraint c
        CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, position)
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
        WHERE c.conrelid = 'anchor_essay_references'::regclass AND c.contype = 'u'
        GROUP BY c.conname
        """,
    )
    return {row.conname: list(row.columns) for row in rows}


async def test_head_has_the_unique_anchor_key_on_exactly_three_columns(cj_database_url: str) -> None:
    # cj_database_url was built by `alembic upgrade head` alone.
    assert await unique_constraints(cj_database_url) == {"uq_anchor_assignment_label_scale": KEY_COLUMNS}
    nullable = await execute_sql(
        cj_database_url,
        "SELECT column_name, is_nullable FROM information_schema.columns "
        "WHERE table_name = 'anchor_essay_references'",
    )
    assert {row.column_name: row.is_nullable for row in nullable} == {
        "id": "NO",
        "assignment_id": "NO",
        "anchor_label": "NO",
        "grade": "NO",
        "grade_scale": "NO",
        "text_storage_id": "NO",
        "created_at": "NO",
        "updated_at": "NO",
    }
    (version,) = await execute_sql(cj_database_url, "SELECT version_num FROM alembic_version")
    scripts = ScriptDirectory.from_config(Config(str(CJ_ALEMBIC_INI)))
    assert version.version_num == scripts.get_current_head()
    assert "0002_unique_anchor_key" in {rev.revision for rev in scripts.walk_revisions()}


def test_models_match_the_migrations(cj_database_url: str) -> None:
    """`alembic check`: the SQLAlchemy models describe exactly the migrated schema."""
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(CJ_ALEMBIC_INI), "check"],
        env={**os.environ, "ALEMBIC_DATABASE_URL": cj_database_url, "PYTHONPATH": python_path_env()},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


async def test_duplicate_cleanup_keeps_the_newest_of_five_copies(fresh_database: str) -> None:
    alembic_upgrade(CJ_ALEMBIC_INI, fresh_database, "0001_assessment_schema")
    assert await unique_constraints(fresh_database) == {}
    await execute_sql(
        fresh_database,
        "INSERT INTO assessment_assignments (assignment_id, grade_scale, instructions) VALUES "
        "(:a, 'twelve_step', 'legacy'), ('other-assignment', 'swedish_8_anchor', 'legacy')",
        {"a": ASSIGNMENT},
    )
    await execute_sql(
        fresh_database,
        "INSERT INTO grade_scales (scale_id, grades) VALUES ('twelve_step', CAST(:grades AS jsonb))",
        {"grades": str(TWELVE_GRADES).replace("'", '"')},
    )
    # Five uploads of the same 12 anchors, an hour apart; inserted in shuffled order so
    # that the row ids do not follow the timestamps (the newest must win by time).
    base = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    rows = [
        {
            "label": grade,
            "grade": grade,
            "storage": f"{copy:02x}{index:030x}",
            "at": base + timedelta(hours=copy, minutes=index),
        }
        for copy in range(5)
        for index, grade in enumerate(TWELVE_GRADES)
    ]
    random.Random(7).shuffle(rows)
    await execute_sql(
        fresh_database,
        "INSERT INTO anchor_essay_references "
        "(assignment_id, anchor_label, grade, grade_scale, text_storage_id, created_at, updated_at) "
        "VALUES (:a, :label, :grade, 'twelve_step', :storage, :at, :at)",
        [{"a": ASSIGNMENT, **row} for row in rows],
    )
    # An unrelated assignment with one anchor, and two rows with identical timestamps
    # (the higher id wins the tie).
    await execute_sql(
        fresh_database,
        "INSERT INTO anchor_essay_references "
        "(assignment_id, anchor_label, grade, grade_scale, text_storage_id, created_at, updated_at) "
        "VALUES ('other-assignment', 'B', 'B', 'swedish_8_anchor', :s, :at, :at)",
        [{"s": "a" * 32, "at": base}, {"s": "b" * 32, "at": base}],
    )
    (count,) = await execute_sql(
        fresh_database, "SELECT count(*) FROM anchor_essay_references WHERE assignment_id = :a", {"a": ASSIGNMENT}
    )
    assert count[0] == 60

    alembic_upgrade(CJ_ALEMBIC_INI, fresh_database, "head")

    kept = await execute_sql(
        fresh_database,
        "SELECT anchor_label, text_storage_id FROM anchor_essay_references WHERE assignment_id = :a",
        {"a": ASSIGNMENT},
    )
    assert len(kept) == 12
    assert {row.anchor_label: row.text_storage_id for row in kept} == {
        grade: f"04{index:030x}" for index, grade in enumerate(TWELVE_GRADES)
    }
    other = await execute_sql(
        fresh_database, "SELECT text_storage_id FROM anchor_essay_references WHERE assignment_id = 'other-assignment'"
    )
    assert [row.text_storage_id for row in other] == ["b" * 32]
    assert await unique_constraints(fresh_database) == {"uq_anchor_assignment_label_scale": KEY_COLUMNS}

    with pytest.raises(IntegrityError, match="uq_anchor_assignment_label_scale"):
        await execute_sql(
            fresh_database,
            "INSERT INTO anchor_essay_references "
            "(assignment_id, anchor_label, grade, grade_scale, text_storage_id) "
            "VALUES (:a, 'A', 'A', 'twelve_step', :s)",
            {"a": ASSIGNMENT, "s": "c" * 32},
        )
