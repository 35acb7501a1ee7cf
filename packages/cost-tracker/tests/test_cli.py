"""The cost-tracker command over a local store."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from cost_tracker import CostMetrics, CostTracker, LocalCostStore
from cost_tracker._cli import app
from typer.testing import CliRunner

runner = CliRunner()


def seed(directory: Path) -> None:
    async def main() -> None:
        async with CostTracker(LocalCostStore(directory), retry_interval=None) as tracker:
            for model, cost, day in (("m1", "0.0000002", 1), ("m2", "1.5", 2), ("m1", None, 2)):
                moment = datetime(2026, 4, day, 12, tzinfo=UTC)
                await tracker.log_cost(
                    CostMetrics(
                        provider="p",
                        model=model,
                        cost=None if cost is None else Decimal(cost),
                        project="cli",
                        timestamp=moment,
                        prompt_tokens=7,
                    )
                )

    asyncio.run(main())


def test_report_groups_spend(tmp_path: Path) -> None:
    seed(tmp_path)
    args = [
        "report",
        "--since",
        "2026-04-01",
        "--until",
        "2026-04-02",
        "--local-dir",
        str(tmp_path),
    ]
    result = runner.invoke(app, [*args, "--by", "model"])
    assert result.exit_code == 0, result.output
    assert "m1" in result.output
    assert "0.0000002" in result.output
    assert "1.5000002" in result.output
    by_day = runner.invoke(app, [*args, "--by", "day", "--until", "2026-04-01"])
    assert "2026-04-02" not in by_day.output
    assert "0.0000002" in by_day.output


def test_export_json_and_csv(tmp_path: Path) -> None:
    seed(tmp_path)
    base = [
        "export",
        "--since",
        "2026-04-01",
        "--until",
        "2026-04-30",
        "--local-dir",
        str(tmp_path),
    ]
    result = runner.invoke(app, [*base, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert sorted(str(item["cost"]) for item in json.loads(result.output)) == [
        "0.0000002",
        "1.5",
        "None",
    ]
    target = tmp_path / "out.csv"
    assert runner.invoke(app, [*base, "--output", str(target)]).exit_code == 0
    assert target.read_text().count("\n") == 4


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", "--since", "April", "--local-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "YYYY-MM-DD" in result.output
    zone = runner.invoke(
        app,
        ["report", "--since", "2026-04-01", "--tz", "Mars/Olympus", "--local-dir", str(tmp_path)],
    )
    assert zone.exit_code == 1
    assert "unknown time zone" in zone.output


@pytest.mark.postgres
def test_db_migrate_delegates_to_llm_common_db(postgres_db: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["db", "migrate", "--database-url", postgres_db])
    assert result.exit_code == 0, result.output
    assert "applied 0 migration(s)" in result.output  # the fixture database is up to date
    report = runner.invoke(
        app, ["report", "--since", "2026-04-01", "--database-url", postgres_db, "--by", "step"]
    )
    assert report.exit_code == 0, report.output
    assert "total" in report.output
