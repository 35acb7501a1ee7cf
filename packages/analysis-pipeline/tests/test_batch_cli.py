"""`analysis-pipeline batch enqueue|status` and `worker` on a real PostgreSQL (offline models)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from analysis_pipeline._cli import app
from typer.testing import CliRunner

pytestmark = pytest.mark.postgres

BILLS = Path(__file__).resolve().parents[3] / "../shared/data/bills"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in (
        "OPENROUTER_API_KEY",
        "ZAI_API_KEY",
        "DATABASE_URL",
        "ANALYSIS_PIPELINE_DATABASE_URL",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LLM_COMMON_DIR", str(tmp_path / "state"))


def _cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_enqueue_files_twice_then_worker_then_status(postgres_db: str, tmp_path: Path) -> None:
    files = [BILLS / "CA-AB1733-2014.txt", BILLS / "US-HR1694-108.txt"]
    args = ["batch", "enqueue", *map(str, files), "--jurisdiction", "California"]
    code, out, err = _cli(*args, "--database-url", postgres_db)
    assert code == 0, err
    assert "enqueued 2 bill(s); 0 already enqueued" in out
    code, out, _ = _cli(*args, "--database-url", postgres_db)
    assert "enqueued 0 bill(s); 2 already enqueued" in out

    code, out, _ = _cli("batch", "status", "--json", "--database-url", postgres_db)
    assert code == 0
    before = json.loads(out)
    assert (before["queued"], before["done"]) == (2, 0)

    code, out, err = _cli("worker", "--exit-when-empty", "--concurrency", "2",
                          "--database-url", postgres_db)  # fmt: skip
    assert code == 0, err
    assert "Offline mode" in err
    assert "worker done: 2 analysed" in out

    code, out, _ = _cli("batch", "status", "--database-url", postgres_db)
    assert code == 0
    assert "2/2 finished" in out
    code, out, _ = _cli("batch", "status", "--json", "--database-url", postgres_db)
    after = json.loads(out)
    assert (after["queued"], after["running"], after["done"], after["failed"]) == (0, 0, 2, 0)
    with psycopg.connect(postgres_db) as conn:
        runs = conn.execute("select bill_id, status from pipeline_runs order by bill_id").fetchall()
    assert runs == [("CA-AB1733-2014", "completed"), ("US-HR1694-108", "completed")]


def test_enqueue_from_table(postgres_db: str) -> None:
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute("create table app_bills (id text, body text, state text)")
        for name in ("CA-SB729-2024", "CA-AB1733-2014"):
            text = (BILLS / f"{name}.txt").read_text()
            conn.execute("insert into app_bills values (%s, %s, 'California')", (name, text))
    args = ["batch", "enqueue", "--from-table", "public.app_bills", "--id-column", "id",
            "--text-column", "body", "--jurisdiction-column", "state"]  # fmt: skip
    code, out, err = _cli(*args, "--database-url", postgres_db)
    assert code == 0, err
    assert "enqueued 2 bill(s)" in out
    code, _, err = _cli("batch", "enqueue", "--from-table", "no_such_table",
                        "--database-url", postgres_db)  # fmt: skip
    assert code == 1
    assert err.count("error:") == 1
    assert "no table 'no_such_table'" in err  # the user's table, not ours, is missing
    assert "llm-common-db migrate" not in err
    code, _, err = _cli("batch", "enqueue", "--from-table", "app_bills; drop table app_bills",
                        "--database-url", postgres_db)  # fmt: skip
    assert code == 1
    assert "no table" in err
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        assert conn.execute("select count(*) from app_bills").fetchone() == (2,)


@pytest.mark.parametrize(
    "args",
    [
        ["batch", "enqueue"],  # neither files nor a table
        ["batch", "enqueue", str(BILLS / "CA-SB729-2024.txt")],  # no jurisdiction
        ["worker", "--limit", "zai=0"],
        ["batch", "status"],  # no database at all
    ],
)
def test_bad_input_is_one_error_line(args: list[str]) -> None:
    database = (
        [] if args == ["batch", "status"] else ["--database-url", "postgresql://x@127.0.0.1:1/x"]
    )
    code, out, err = _cli(*args, *database)
    assert code == 1
    assert err.strip().startswith("error:")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in out + err


@pytest.mark.parametrize("command", [["batch", "status"], ["worker", "--exit-when-empty"]])
def test_unreachable_database_hides_the_password(command: list[str]) -> None:
    url = "postgresql://postgres:s3cret-pw@127.0.0.1:1/nowhere?connect_timeout=1"
    code, out, err = _cli(*command, "--database-url", url)
    assert code == 1
    assert err.count("error:") == 1
    assert "unreachable" in err
    assert "s3cret-pw" not in out + err
    assert "taking jobs" not in err  # refused before it claims to work


def test_worker_on_an_unmigrated_database_says_what_to_run(postgres_db: str) -> None:
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute("drop table public.pipeline_batch_items cascade")
    code, _, err = _cli("worker", "--exit-when-empty", "--database-url", postgres_db)
    assert code == 1
    assert err.count("error:") == 1
    assert "llm-common-db migrate --package analysis-pipeline-batch" in err


def test_watch_below_half_a_second_is_refused() -> None:
    # 0 would poll the database in a tight loop; refused before the database is tried, by the
    # installed command (its option errors go through the same one-line handler).
    cli = Path(sys.executable).with_name("analysis-pipeline")
    done = subprocess.run(
        [str(cli), "batch", "status", "--watch", "0", "--database-url", "postgresql://x@127.0.0.1:1/x"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("error:") == 1
    assert "--watch" in done.stderr
