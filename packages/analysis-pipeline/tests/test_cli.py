"""The ``analysis-pipeline`` command, offline (no keys), in a fresh directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from analysis_pipeline._cli import app
from typer.testing import CliRunner

EXAMPLE = Path(__file__).resolve().parents[3] / "examples/bills/EX-AB0042-2026.txt"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in (
        "OPENROUTER_API_KEY",
        "ZAI_API_KEY",
        "LLM_COMMON_DIR",
        "LLM_CLIENT_CONFIG",
        "PROJECT_NAME",
        "DATABASE_URL",  # the local store, whatever the environment points at
        "ANALYSIS_PIPELINE_DATABASE_URL",
        "SUPABASE_URL",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)


def _run_example(*extra: str) -> dict[str, object]:
    args = ["run", str(EXAMPLE), "--bill-id", "EX-AB0042-2026", "--jurisdiction", "Exampleland"]
    result = runner.invoke(app, [*args, "--json", *extra])
    assert result.exit_code == 0, result.output
    assert "Offline mode" in result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_run_offline_then_list_show_score_compare(tmp_path: Path) -> None:
    data = _run_example()
    run_id = str(data["run_id"])
    assert data["passed"] is True
    assert (tmp_path / ".llm-common" / "pipeline.sqlite3").exists()  # the default local store

    listed = runner.invoke(app, ["runs", "--json"])
    assert listed.exit_code == 0
    assert json.loads(listed.stdout)[0]["id"] == run_id
    assert json.loads(listed.stdout)[0]["project"] == "default"  # PROJECT_NAME unset

    shown = runner.invoke(app, ["show", run_id[:6]])  # a unique prefix is enough
    assert shown.exit_code == 0
    assert "review:1" in shown.stdout
    assert "OFFLINE placeholder" in shown.stdout  # an offline review is no verdict
    assert "PASSED" not in shown.stdout

    scored = runner.invoke(app, ["score", run_id, "0.8"])
    assert scored.exit_code == 0

    compared = runner.invoke(app, ["compare", "--step", "generate", "--csv", "cmp.csv", "--json"])
    assert compared.exit_code == 0
    rows = json.loads(compared.stdout)
    assert rows[0]["model"] == "offline-analyst"
    assert rows[0]["mean_quality"] == 0.8
    assert (tmp_path / "cmp.csv").read_text().startswith("model,step,runs")


def test_human_output_has_analysis_review_and_cost_table() -> None:
    args = ["run", str(EXAMPLE), "--bill-id", "EX-AB0042-2026", "--jurisdiction", "Exampleland"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for needle in ("Analysis of EX-AB0042-2026", "Review", "Cost", "total", "run id"):
        assert needle in result.stdout
    assert "queries searched" in result.stderr


def test_small_context_condenses_and_resume_of_a_finished_run_pays_nothing() -> None:
    data = _run_example("--context-tokens", "4800")
    assert data["condensed"] is True
    again = runner.invoke(app, ["resume", str(data["run_id"]), "--json"])
    assert again.exit_code == 0, again.output
    assert all(step["reused"] for step in json.loads(again.stdout)["steps"])


def test_errors_are_one_clear_line() -> None:
    result = runner.invoke(app, ["show", "00000000-0000-4000-8000-000000000000"])
    assert result.exit_code == 1
    assert "no pipeline run with id" in result.stderr
    bad = runner.invoke(app, ["score", "x", "1.5"])
    assert bad.exit_code != 0


def test_resume_of_a_live_run_is_one_error_line(tmp_path: Path) -> None:
    import asyncio
    from datetime import UTC, datetime

    from analysis_pipeline import LocalRunStore, RunRecord

    run = RunRecord(
        bill_id="EX-AB0042-2026",
        jurisdiction="Exampleland",
        models={"generate": ["test"], "review": ["test"]},
        inputs={"bill_text": EXAMPLE.read_text(), "max_rounds": 2},
        lease_owner="elsewhere:42:abcd",
        heartbeat_at=datetime.now(UTC),
    )

    async def seed() -> None:
        async with LocalRunStore(tmp_path / ".llm-common") as store:
            await store.save_run(run)

    asyncio.run(seed())
    result = runner.invoke(app, ["resume", run.id])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert [line for line in lines if line.startswith("error: ")] == [lines[-1]]
    assert "Offline mode" in lines[0]
    assert "┏" not in result.stderr  # refused before any progress table
    assert "Traceback" not in result.stderr
    assert "in progress in another process (elsewhere:42:abcd" in lines[-1]


def test_resume_records_costs_under_the_runs_own_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    from datetime import UTC, datetime, timedelta

    from analysis_pipeline import LocalRunStore, RunRecord
    from cost_tracker import LocalCostStore

    run = RunRecord(
        bill_id="EX-AB0042-2026",
        jurisdiction="Exampleland",
        status="failed",
        models={"generate": ["test"], "review": ["test"]},
        inputs={"bill_text": EXAMPLE.read_text(), "max_rounds": 1},
        project="bill-app",
    )

    async def seed() -> None:
        async with LocalRunStore(tmp_path / ".llm-common") as store:
            await store.save_run(run)

    async def cost_projects() -> set[str]:
        store = LocalCostStore(tmp_path / ".llm-common")
        now = datetime.now(UTC)
        try:
            rows = await store.records(now - timedelta(hours=1), now + timedelta(hours=1), None)
        finally:
            await store.aclose()
        return {row.project for row in rows}

    asyncio.run(seed())
    monkeypatch.setenv("PROJECT_NAME", "someone-else")
    result = runner.invoke(app, ["resume", run.id[:8], "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run_id"] == run.id
    assert asyncio.run(cost_projects()) == {"bill-app"}
