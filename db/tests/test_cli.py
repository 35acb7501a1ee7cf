"""The llm-common-db command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from llm_common_db._cli import app
from typer.testing import CliRunner

pytestmark = pytest.mark.postgres
runner = CliRunner()


def test_migrate_then_status(empty_db: str) -> None:
    result = runner.invoke(app, ["migrate", "--database-url", empty_db])
    assert result.exit_code == 0, result.output
    assert "applied 20261124000000_core.sql" in result.output
    again = runner.invoke(app, ["migrate"], env={"DATABASE_URL": empty_db})
    assert again.exit_code == 0
    assert "up to date" in again.output
    status = runner.invoke(app, ["status", "--database-url", empty_db])
    assert status.exit_code == 0
    assert "pending" not in status.output
    assert "applied" in status.output


def test_status_exits_1_on_drift_and_hides_password(empty_db: str, migrations_copy: Path) -> None:
    args = ["--database-url", empty_db, "--dir", str(migrations_copy)]
    assert runner.invoke(app, ["migrate", *args]).exit_code == 0
    (migrations_copy / "20261124000400_pipeline.sql").write_text("-- edited\n")
    status = runner.invoke(app, ["status", *args])
    assert status.exit_code == 1
    assert "changed" in status.output
    migrate = runner.invoke(app, ["migrate", *args])
    assert migrate.exit_code == 1
    assert "was changed after it was applied" in migrate.output


def test_unreachable_database_is_a_clean_error() -> None:
    url = "postgresql://postgres:hunter2-secret@127.0.0.1:1/postgres"
    result = runner.invoke(app, ["migrate", "--database-url", url])
    assert result.exit_code == 1
    assert "error:" in result.output
    assert "hunter2-secret" not in result.output


def test_path_prints_the_migrations_dir() -> None:
    result = runner.invoke(app, ["path"])
    assert result.exit_code == 0
    assert Path(result.output.strip()).joinpath("20261124000000_core.sql").is_file()
