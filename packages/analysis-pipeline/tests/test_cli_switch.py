"""The switch-over through the CLI (subprocess), on PostgreSQL and on the Supabase loopback path.

``flag set|show|route``, ``shadow`` with a legacy analyser that raises or hangs, and
``compare --shadow`` checked against the rows read straight from ``pipeline_shadow_runs``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from .conftest import BILLS

CLI = str(Path(sys.executable).with_name("analysis-pipeline"))
KEYS = [f"CA-AB{i}-2026" for i in range(2000)]
LEGACY_APP = """
import asyncio
from decimal import Decimal

from analysis_pipeline import LegacyResult, ShadowImpact


async def crash(bill_text, bill_id, jurisdiction):
    raise RuntimeError("legacy service down")


async def hang(bill_text, bill_id, jurisdiction):
    await asyncio.sleep(3600)


async def answer(bill_text, bill_id, jurisdiction):
    impacts = [ShadowImpact(name="The Housing", direction="increase"),
               ShadowImpact(name="Fees", direction="unclear")]
    return LegacyResult(impacts=impacts, cost=Decimal("0.0015"))
"""


_BACKEND_VARS = frozenset({"DATABASE_URL", "ANALYSIS_PIPELINE_DATABASE_URL", "LLM_COMMON_DIR"})


class Cli:
    """Runs ``analysis-pipeline`` in a subprocess against one backend, offline, in ``cwd``."""

    def __init__(self, backend: str, env: dict[str, str], cwd: Path, db_url: str) -> None:
        self.backend = backend
        self.env = env
        self.cwd = cwd
        self.db_url = db_url

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("USE_NEW_LLM", "SUPABASE", "OPENROUTER", "ZAI_"))
                 and k not in _BACKEND_VARS}  # fmt: skip
        return subprocess.run(
            [CLI, *args],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=self.cwd,
            env={**clean, "PYTHONWARNINGS": "ignore::DeprecationWarning", **self.env, **env},
            check=False,
        )

    def json(self, *args: str, **env: str) -> Any:
        done = self(*args, "--json", **env)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def rows(self, sql: str) -> list[dict[str, Any]]:
        with psycopg.connect(self.db_url) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(sql)
            return list(cur.fetchall())


@pytest.fixture(params=["postgres", "supabase"])
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cli]:
    (tmp_path / "legacy_app.py").write_text(LEGACY_APP, encoding="utf-8")
    if request.param == "postgres":
        url = str(request.getfixturevalue("postgres_db"))
        yield Cli("postgres", {"DATABASE_URL": url}, tmp_path, url)
        return
    server = request.getfixturevalue("supabase_server")
    env = {"SUPABASE_URL": server.url, "SUPABASE_SERVICE_ROLE_KEY": server.service_key}
    yield Cli("supabase", env, tmp_path, server.db_url)


def test_flag_false_beats_a_percentage_for_2000_keys(cli: Cli) -> None:
    env_off = {"USE_NEW_LLM_FRAMEWORK": "false", "USE_NEW_LLM_FRAMEWORK_PERCENTAGE": "25"}
    assert cli.json("flag", "route", *KEYS, **env_off)["routed"] == 0
    by_percent = cli.json("flag", "route", *KEYS, USE_NEW_LLM_FRAMEWORK_PERCENTAGE="25")
    assert 400 < by_percent["routed"] < 600  # the percentage alone routes about a quarter

    cli.json("flag", "set", "--percent", "25", "--by", "alice")
    stored = cli.json("flag", "route", *KEYS)
    assert (stored["source"], stored["routed"]) == ("store", by_percent["routed"])
    cli.json("flag", "set", "--enabled", "false", "--by", "bob")
    off = cli.json("flag", "route", *KEYS)
    assert (off["source"], off["enabled"], off["percent"], off["routed"]) == (
        "store", False, 25.0, 0,
    )  # fmt: skip


def test_store_flag_wins_over_env_and_every_change_is_audited(cli: Cli) -> None:
    env_on = {"USE_NEW_LLM_FRAMEWORK": "true"}
    before = cli.json("flag", "show", **env_on)
    assert (before["source"], before["effective_percent"], before["store"]) == ("env", 100, None)
    cli.json("flag", "set", "--percent", "10", "--by", "alice")
    cli.json("flag", "set", "--enabled", "off", "--by", "bob")
    cli.json("flag", "set", "--percent", "50", "--by", "carol")  # the switch stays off
    shown = cli.json("flag", "show", **env_on)
    assert (shown["source"], shown["enabled"], shown["percent"], shown["effective_percent"]) == (
        "store", False, 50.0, 0.0,
    )  # fmt: skip
    audit = [(c["changed_by"], c["old_enabled"], c["old_percent"], c["new_enabled"],
              c["new_percent"]) for c in shown["changes"]]  # fmt: skip
    assert audit == [
        ("carol", False, 10.0, False, 50.0),
        ("bob", None, 10.0, False, 10.0),
        ("alice", None, None, None, 10.0),
    ]
    rows = cli.rows("select changed_by, changed_at from pipeline_flag_changes order by id")
    assert [r["changed_by"] for r in rows] == ["alice", "bob", "carol"]
    assert all(r["changed_at"].utcoffset().total_seconds() == 0 for r in rows)
    human = cli("flag", "show")
    assert human.returncode == 0
    assert "set by carol" in human.stdout
    assert "OFF" in human.stdout


@pytest.mark.parametrize("args", [("--enabled", "maybe"), ("--percent", "150"), ()])
def test_bad_flag_changes_are_one_error_line(cli: Cli, args: tuple[str, ...]) -> None:
    done = cli("flag", "set", *args, "--by", "x")
    assert done.returncode == 1
    assert done.stderr.startswith("error: ")
    assert len(done.stderr.strip().splitlines()) == 1
    assert cli.rows("select * from pipeline_flag_changes") == []


@pytest.mark.parametrize(("legacy", "status"), [("crash", "error"), ("hang", "timeout")])
def test_shadow_with_a_failing_legacy_arm_serves_new_and_records_it(
    cli: Cli, legacy: str, status: str
) -> None:
    cli.json("flag", "set", "--enabled", "true", "--by", "ops")
    bill = BILLS / "CA-AB1482-2019.txt"
    done = cli("shadow", str(bill), "--jurisdiction", "California",
               "--legacy", f"legacy_app:{legacy}", "--shadow-timeout", "1", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    (record,) = json.loads(done.stdout)
    assert (record["served"], record["new"]["status"], record["legacy"]["status"]) == (
        "new", "ok", status,
    )  # fmt: skip
    (row,) = cli.rows("select * from pipeline_shadow_runs")
    assert (row["served_arm"], row["new_status"], row["legacy_status"]) == ("new", "ok", status)
    assert row["legacy_error"] == record["legacy"]["error"]
    assert ("legacy service down" if legacy == "crash" else "shadow_timeout=1 s") in (
        row["legacy_error"]
    )
    (run,) = cli.rows("select id, status from pipeline_runs")
    assert (str(run["id"]), run["status"]) == (record["new"]["run_id"], "completed")


def _key(name: str) -> str:
    return name.lower().removeprefix("the ").strip()


def _expected(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The comparison worked out from raw rows, independently of the library's code."""
    both = only_new = only_legacy = differ = compared = 0
    for row in rows:
        if row["new_status"] != "ok" or row["legacy_status"] != "ok":
            continue
        compared += 1
        new = {_key(i["name"]): i["direction"] for i in row["new_impacts"]}
        old = {_key(i["name"]): i["direction"] for i in row["legacy_impacts"]}
        both += len(new.keys() & old.keys())
        only_new += len(new.keys() - old.keys())
        only_legacy += len(old.keys() - new.keys())
        differ += sum(1 for k in new.keys() & old.keys() if new[k] != old[k])
    arms = {}
    for arm in ("new", "legacy"):
        costs = [Decimal(str(r[f"{arm}_cost"])) for r in rows if r[f"{arm}_cost"] is not None]
        arms[arm] = {
            "served": sum(1 for r in rows if r["served_arm"] == arm),
            "ok": sum(1 for r in rows if r[f"{arm}_status"] == "ok"),
            "errors": sum(1 for r in rows if r[f"{arm}_status"] == "error"),
            "timeouts": sum(1 for r in rows if r[f"{arm}_status"] == "timeout"),
            "total_cost": sum(costs, Decimal(0)) if costs else None,
            "latencies": sorted(float(r[f"{arm}_latency_ms"]) for r in rows),
        }
    return {"runs": len(rows), "compared": compared, "both": both, "only_new": only_new,
            "only_legacy": only_legacy, "differ": differ, "arms": arms}  # fmt: skip


def test_compare_shadow_figures_equal_the_recorded_rows(cli: Cli) -> None:
    bills = [BILLS / f"{b}.txt" for b in ("CA-AB1482-2019", "CA-SB1020-2022", "CA-AB2097-2022")]
    cli.json("flag", "set", "--percent", "50", "--by", "ops")
    for legacy in ("answer", "crash"):
        done = cli("shadow", *map(str, bills), "--jurisdiction", "California",
                   "--legacy", f"legacy_app:{legacy}", "--json")  # fmt: skip
        assert done.returncode == 0, done.stderr
    rows = cli.rows("select * from pipeline_shadow_runs")
    want = _expected(rows)
    got = cli.json("compare", "--shadow")
    assert (got["runs"], got["compared"]) == (want["runs"], want["compared"]) == (6, 3)
    assert (got["impacts_both"], got["impacts_only_new"], got["impacts_only_legacy"],
            got["direction_disagreements"]) == (
        want["both"], want["only_new"], want["only_legacy"], want["differ"],
    )  # fmt: skip
    assert want["both"] > 0
    assert want["only_new"] + want["only_legacy"] > 0  # the arms really differ
    for arm in got["arms"]:
        expected = want["arms"][arm["arm"]]
        assert (arm["served"], arm["ok"], arm["errors"], arm["timeouts"]) == (
            expected["served"], expected["ok"], expected["errors"], expected["timeouts"],
        )  # fmt: skip
        total = None if arm["total_cost"] is None else Decimal(arm["total_cost"])
        assert total == expected["total_cost"]
        assert arm["p50_latency_ms"] == pytest.approx(_median(expected["latencies"]), rel=1e-9)
    assert Decimal(got["arms"][1]["total_cost"]) == Decimal("0.0045")  # 3 answers x 0.0015
    human = cli("compare", "--shadow")
    assert human.returncode == 0, human.stderr
    assert "only legacy" in human.stdout
    assert "p95 latency" in human.stdout


def _median(values: list[float]) -> float:
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
