"""Per-package migrations: the manifest, `migrate --package`, and the chat app's database."""

from __future__ import annotations

import tomllib
import uuid
from pathlib import Path

import psycopg
import pytest
from llm_common_db import (
    MigrationError,
    MigrationFileError,
    MissingTablesError,
    PostgresPool,
    default_migrations_dir,
    discover_migrations,
    migrate,
    migration_status,
)

from ._helpers import PACKAGE_TABLES, run_cli

pytestmark = pytest.mark.postgres

PACKAGES = (
    "cost-tracker",
    "web-search",
    "conversation-memory",
    "analysis-pipeline",
    "analysis-pipeline-batch",
)


def _names(url: str, view: str, schema_column: str, name_column: str) -> set[str]:
    query = f"select {name_column} from information_schema.{view} where {schema_column} = 'public'"
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute(query).fetchall()}  # type: ignore[arg-type]


def _public_tables(url: str) -> set[str]:
    return _names(url, "tables", "table_schema", "table_name")


def _public_functions(url: str) -> set[str]:
    return _names(url, "routines", "routine_schema", "routine_name")


def test_every_shipped_file_has_a_package_and_a_down_file() -> None:
    migrations = discover_migrations()
    assert {m.package for m in migrations} == {"core", *PACKAGES}
    for m in migrations:
        assert m.down is not None, m.filename
        assert m.down.parent == default_migrations_dir() / "down"
    assert migrations[0].package == "core"


def test_down_files_are_not_up_migrations() -> None:
    """down/ is a folder: neither the runner's *.sql glob nor `cp .../*.sql` picks it up."""
    top_level = {p.name for p in default_migrations_dir().glob("*.sql")}
    assert top_level == {m.filename for m in discover_migrations()}
    assert not any(".down" in name for name in top_level)


def test_a_file_missing_from_the_manifest_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "packages.toml").write_text('core = ["20990101000000_a.sql"]\n')
    (tmp_path / "20990101000000_a.sql").write_text("select 1;")
    (tmp_path / "20990101000001_b.sql").write_text("select 1;")
    with pytest.raises(MigrationFileError, match=r"20990101000001_b\.sql is not listed"):
        discover_migrations(tmp_path)
    (tmp_path / "packages.toml").write_text(
        'core = ["20990101000000_a.sql"]\nx = ["20990101000000_a.sql"]\n'
    )
    with pytest.raises(MigrationFileError, match="listed under both core and x"):
        discover_migrations(tmp_path)


async def test_unknown_package_is_refused_before_connecting(migrations_copy: Path) -> None:
    with pytest.raises(MigrationError, match="unknown package 'chat'"):
        await migrate("postgresql://postgres@127.0.0.1:1/none", packages=["chat"])
    with pytest.raises(MigrationError, match=r"has no packages\.toml"):
        await migrate("postgresql://postgres@127.0.0.1:1/none", migrations_copy, packages=["x"])


def test_chat_app_database_holds_no_pipeline_or_cost_tables(empty_db: str) -> None:
    result = run_cli("migrate", "--package", "conversation-memory", "--database-url", empty_db)
    assert result.returncode == 0, result.stderr
    assert "applied 20261124000000_core.sql" in result.stdout
    assert "applied 20261124000300_conversations.sql" in result.stdout
    assert "cost_tracking" not in result.stdout
    assert "pipeline" not in result.stdout

    tables = _public_tables(empty_db)
    assert {"conversations", "conversation_counters", "conversation_summaries"} <= tables
    leaked = {
        t
        for t in tables
        if t.startswith(("cost_", "pipeline_", "web_search_", "model_", "procrastinate_"))
    }
    assert leaked == set()
    functions = _public_functions(empty_db)
    assert "conversation_append" in functions
    assert not {f for f in functions if f.startswith(("cost_", "pipeline_", "web_search_"))}
    assert not {"get_daily_cost", "get_monthly_cost", "cleanup_search_cache"} & functions

    user = uuid.uuid4()
    with psycopg.connect(empty_db) as conn:
        conn.execute("select conversation_append(%s, 'c1', 'user', 'hello')", (user,))
        conn.execute("select conversation_append(%s, 'c1', 'assistant', 'hi')", (user,))
        row = conn.execute("select conversation_context(%s, 'c1')", (user,)).fetchone()
    assert row is not None
    assert [m["content"] for m in row[0]["messages"]] == ["hello", "hi"]

    again = run_cli("migrate", "--package", "conversation-memory", "--database-url", empty_db)
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout
    status = run_cli("status", "--package", "conversation-memory", "--database-url", empty_db)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "pending" not in status.stdout
    assert "cost_tracking" not in status.stdout


async def test_repeatable_package_flag_and_later_full_migrate(empty_db: str) -> None:
    applied = await migrate(empty_db, packages=["web-search", "cost-tracker"])
    by_name = {m.filename: m.package for m in discover_migrations()}
    assert {by_name[f] for f in applied} == {"core", "web-search", "cost-tracker"}
    tables = _public_tables(empty_db)
    assert {"web_search_cache", "cost_tracking"} <= tables
    assert "conversations" not in tables
    assert "pipeline_runs" not in tables
    states = {s.name: s.state for s in await migration_status(empty_db)}
    assert states["conversations"] == "pending"
    assert states["cost_tracking"] == "applied"
    # The other packages' files apply later, out of version order: packages are independent.
    rest = await migrate(empty_db)
    assert {by_name[f] for f in rest} == {
        "conversation-memory",
        "analysis-pipeline",
        "analysis-pipeline-batch",
    }
    assert {s.state for s in await migration_status(empty_db)} == {"applied"}


def test_cli_unknown_package_is_one_error_line(empty_db: str) -> None:
    result = run_cli("migrate", "--package", "chat", "--database-url", empty_db)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: unknown package 'chat'")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("package", "query"),
    [
        ("cost-tracker", "select public.cost_batch('[]'::jsonb)"),
        ("web-search", "select count(*) from public.web_search_cache"),
        ("conversation-memory", "select count(*) from public.conversations"),
        ("analysis-pipeline", "select count(*) from public.pipeline_runs"),
    ],
)
async def test_the_command_a_missing_tables_error_names_creates_them(
    empty_db: str, package: str, query: str
) -> None:
    pg = PostgresPool.from_url(empty_db, package=package)
    try:
        with pytest.raises(MissingTablesError) as info:
            async with pg.connection() as conn:
                await conn.execute(query)
        command = info.value.command.replace("<url>", empty_db).split()
        assert command[:2] == ["llm-common-db", "migrate"]
        result = run_cli(*command[1:])
        assert result.returncode == 0, result.stderr
        async with pg.connection() as conn:
            await conn.execute(query)
    finally:
        await pg.aclose()
    others = {t for p, t in PACKAGE_TABLES.items() if p != package}
    assert not others & _public_tables(empty_db)  # that package's tables, nobody else's


def test_readme_table_matches_the_manifest() -> None:
    """The README's per-package table lists each package's files as packages.toml does."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    manifest = tomllib.loads((default_migrations_dir() / "packages.toml").read_text())
    rows = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and cells[1] == f"`llm-common-db migrate --package {cells[0]}`":
            rows[cells[0]] = [name.strip(" `") for name in cells[2].split(",")]
    expected = {
        package: [name.split("_", 1)[1].removesuffix(".sql") for name in files]
        for package, files in manifest.items()
        if package != "core"
    }
    assert rows == expected
