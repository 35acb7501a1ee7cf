"""`status` finds objects dropped by hand (drift); `migrate --repair` restores them."""

from __future__ import annotations

import psycopg
import pytest
from llm_common_db import discover_migrations, migrate, migration_status, repair
from llm_common_db._objects import expected_objects, missing_objects, read_events

from ._helpers import run_cli, schema_dump

pytestmark = pytest.mark.postgres


async def test_every_object_read_from_the_shipped_files_exists_after_migrate(
    empty_db: str,
) -> None:
    await migrate(empty_db)
    migrations = discover_migrations()
    expected = expected_objects([(m.version, m.path.read_text()) for m in migrations])
    kinds = {obj.kind for obj in expected}
    assert kinds == {"table", "column", "foreign key", "function", "index", "policy", "trigger"}
    for m in migrations[1:]:  # core creates functions only where Supabase has none
        assert any(v == "create" for v, _ in read_events(m.path.read_text())), m.filename
    async with await psycopg.AsyncConnection.connect(empty_db) as conn:
        assert await missing_objects(conn, expected) == []


def test_table_dropped_by_hand_is_drift_and_repair_restores_it(empty_db: str) -> None:
    assert run_cli("migrate", "--database-url", empty_db).returncode == 0
    before = schema_dump(empty_db)
    with psycopg.connect(empty_db) as conn:  # the plan's rollback SQL
        conn.execute("drop table if exists cost_tracking cascade")

    status = run_cli("status", "--database-url", empty_db)
    assert status.returncode == 1
    assert (
        "drift: table public.cost_tracking is missing "
        "(created by 20261124000100_cost_tracking.sql, applied)"
    ) in status.stdout
    # its indexes and policies went with it: reported once, as the table
    assert "cost_tracking_idempotency_id_key" not in status.stdout
    assert status.stderr.strip().splitlines() == [
        "error: 1 applied migration(s) drifted (objects dropped by hand): run "
        "`llm-common-db migrate --repair` to restore them"
    ]

    plain = run_cli("migrate", "--database-url", empty_db)  # no longer "up to date"
    assert plain.returncode == 1
    assert "up to date" not in plain.stdout
    assert "drift: table public.cost_tracking is missing" in plain.stdout

    fixed = run_cli("migrate", "--repair", "--database-url", empty_db)
    assert fixed.returncode == 0, fixed.stderr
    assert (
        "repaired 20261124000100_cost_tracking.sql (restored table public.cost_tracking)"
        in fixed.stdout
    )
    assert schema_dump(empty_db) == before
    clean = run_cli("status", "--database-url", empty_db)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "drift" not in clean.stdout
    with psycopg.connect(empty_db) as conn:
        log = conn.execute(
            "select version, action, detail from llm_common_schema_migration_log"
            " where action = 'repair'"
        ).fetchall()
    assert log[0] == ("20261124000100", "repair", "table public.cost_tracking")


async def test_function_and_column_drift(empty_db: str) -> None:
    await migrate(empty_db)
    before = schema_dump(empty_db)
    with psycopg.connect(empty_db) as conn:
        conn.execute("drop function get_daily_cost(date)")
        conn.execute("alter table pipeline_runs drop column review_score")
    states = {s.name: s for s in await migration_status(empty_db)}
    assert states["plan_compat"].state == "drift"
    assert states["plan_compat"].missing == ("function public.get_daily_cost(date)",)
    assert states["pipeline_resume"].state == "drift"
    assert states["pipeline_resume"].missing == ("column public.pipeline_runs.review_score",)
    assert states["cost_tracking"].state == "applied"
    repaired = await repair(empty_db)
    assert repaired["20261202000900_plan_compat.sql"] == ("function public.get_daily_cost(date)",)
    # Re-run: each drifted file and its own package's later files, nothing else.
    assert set(repaired) == {
        m.filename
        for m in discover_migrations()
        if (m.package == "cost-tracker" and m.version >= "20261202000900")
        or (m.package == "analysis-pipeline" and m.version >= "20261124000500")
    }
    assert repaired["20261124000500_pipeline_resume.sql"] == (
        "column public.pipeline_runs.review_score",
    )
    after = schema_dump(empty_db)
    # A column added back lands last in its table; everything else is as before.
    assert sorted(after.pop("columns")) == sorted(before.pop("columns"))
    assert after == before
    assert {s.state for s in await migration_status(empty_db)} == {"applied"}
    assert await repair(empty_db) == {}


async def test_repair_reruns_the_later_files_of_the_package(empty_db: str) -> None:
    """pipeline_steps dropped by hand: the columns a later file added to it come back too."""
    await migrate(empty_db, packages=["analysis-pipeline"])
    before = schema_dump(empty_db)
    with psycopg.connect(empty_db) as conn:
        conn.execute("drop table pipeline_steps")
    states = {s.name: s for s in await migration_status(empty_db)}
    assert states["pipeline"].missing == ("table public.pipeline_steps",)
    # The columns and index a later file put on it went with the table: reported as the table.
    assert states["pipeline_resume"].state == "applied"
    repaired = await repair(empty_db, packages=["analysis-pipeline"])
    assert list(repaired)[:2] == [
        "20261124000400_pipeline.sql",
        "20261124000500_pipeline_resume.sql",
    ]
    assert schema_dump(empty_db) == before
    assert {s.state for s in await migration_status(empty_db)} == {"applied", "pending"}


def test_foreign_key_lost_to_cascade_is_reported_not_hidden(empty_db: str) -> None:
    assert (
        run_cli("migrate", "--package", "analysis-pipeline", "--database-url", empty_db).returncode
        == 0
    )
    with psycopg.connect(empty_db) as conn:
        conn.execute("drop table pipeline_runs cascade")
    status = run_cli("status", "--database-url", empty_db)
    assert status.returncode == 1
    assert "drift: table public.pipeline_runs is missing" in status.stdout
    assert "drift: foreign key public.pipeline_steps.run_id is missing" in status.stdout

    fixed = run_cli(
        "migrate", "--repair", "--package", "analysis-pipeline", "--database-url", empty_db
    )
    assert fixed.returncode == 1
    assert "restored table public.pipeline_runs" in fixed.stdout
    assert "drift: foreign key public.pipeline_steps.run_id is missing" in fixed.stdout
    lines = fixed.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: re-applying the files did not restore everything")
    assert "rollback --package" in lines[0]

    # The remedy it names works: nothing holds rows, so roll back and migrate again.
    assert (
        run_cli("rollback", "--package", "analysis-pipeline", "--database-url", empty_db).returncode
        == 0
    )
    assert (
        run_cli("migrate", "--package", "analysis-pipeline", "--database-url", empty_db).returncode
        == 0
    )
    assert (
        run_cli("status", "--package", "analysis-pipeline", "--database-url", empty_db).returncode
        == 0
    )
