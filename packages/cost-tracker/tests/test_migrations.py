"""cost-tracker's migration files are idempotent: running one again changes nothing."""

from __future__ import annotations

import psycopg
import pytest
from llm_common_db import default_migrations_dir

pytestmark = pytest.mark.postgres

OWN = sorted(path.name for path in default_migrations_dir().glob("2026120200*_cost_*.sql"))


def test_the_new_files_exist() -> None:
    assert "20261202000100_cost_reservation_holders.sql" in OWN


@pytest.mark.parametrize("name", OWN)
def test_a_file_runs_twice(postgres_db: str, name: str) -> None:
    text = (default_migrations_dir() / name).read_text(encoding="utf-8")
    with psycopg.connect(postgres_db) as conn:  # already applied once by the fixture
        conn.execute(text)  # type: ignore[arg-type]
        conn.execute(text)  # type: ignore[arg-type]
