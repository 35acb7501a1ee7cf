"""Every ``analysis-pipeline`` command as a person runs it: a subprocess, on each backend.

PostgreSQL is a private migrated database; Supabase is the real ``supabase`` client (inside
the CLI) talking to testkit's loopback PostgREST over such a database. Offline (no keys).

Then every way a person can get a command wrong: one ``error:`` line, exit 1. Through the
installed script, so what is checked is exactly what a terminal shows: nothing on stdout, one
line on stderr, no traceback, no driver log lines, no password.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from llm_common_testkit import create_database, drop_database, new_database_name, replace_url

EXAMPLE = Path(__file__).resolve().parents[3] / "examples/bills/EX-AB0042-2026.txt"
CLI = Path(sys.executable).with_name("analysis-pipeline")
_CLEAN = (
    "OPENROUTER_API_KEY", "ZAI_API_KEY", "LLM_COMMON_DIR", "LLM_CLIENT_CONFIG", "DATABASE_URL",
    "ANALYSIS_PIPELINE_DATABASE_URL", "SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_KEY",
    "PROJECT_NAME",
)  # fmt: skip


@dataclass
class Cli:
    """Runs the installed ``analysis-pipeline`` script in ``cwd`` with backend options."""

    cwd: Path
    options: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def __call__(self, *args: str, backend: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in _CLEAN}
        env.update(self.env, COLUMNS="80", TERM="dumb")
        return subprocess.run(
            [str(CLI), *args, *(self.options if backend else [])],
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = self(*args)
        assert done.returncode == 0, done.stderr
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The only line the command printed: ``error: ...`` on stderr, exit code 1."""
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture(params=["postgres", "supabase"])
def cli(request: pytest.FixtureRequest, tmp_path: Path, postgres_db: str) -> Iterator[Cli]:
    """The CLI pointed at a migrated database: by --database-url, or Supabase by env + flag."""
    if request.param == "postgres":
        yield Cli(tmp_path, ["--database-url", postgres_db])
        return
    from llm_common_testkit import SupabaseServer

    with SupabaseServer(postgres_db) as server:
        yield Cli(
            tmp_path,
            ["--supabase-url", server.url],
            {"SUPABASE_SERVICE_ROLE_KEY": server.service_key, "_DB": postgres_db},
        )


def _db_url(cli: Cli) -> str:
    return cli.env.get("_DB") or cli.options[1]


def test_every_command_on_the_backend(cli: Cli) -> None:
    run = cli.json(
        "run", str(EXAMPLE), "--bill-id", "EX-AB0042-2026", "--jurisdiction", "Exampleland",
        "--project", "cli-backends",
    )  # fmt: skip
    run_id = run["run_id"]
    assert run["offline"] is True
    assert all(step["offline"] for step in run["steps"])
    assert not (cli.cwd / ".llm-common" / "pipeline.sqlite3").exists()  # nothing ran locally

    with psycopg.connect(_db_url(cli)) as conn:
        row = conn.execute(
            "select project, status from public.pipeline_runs where id = %s", (run_id,)
        ).fetchone()
        costs = conn.execute("select distinct project from public.cost_tracking").fetchall()
    assert row == ("cli-backends", "completed")
    assert costs == [("cli-backends",)]  # the run and its cost rows carry the same project

    listed = cli.json("runs")
    assert [r["id"] for r in listed] == [run_id]
    assert listed[0]["offline"] is True
    table = cli.ok("runs").stdout
    assert run_id in table  # whole, not "44510b8…"

    prefix = run_id[:8]
    shown = cli.json("show", prefix)
    assert shown["id"] == run_id
    assert shown["project"] == "cli-backends"
    assert shown["offline"] is True
    assert {s["key"] for s in shown["steps"]} >= {"research", "generate", "review:1"}
    human = cli.ok("show", prefix).stdout
    assert "OFFLINE placeholder" in human
    assert "PASSED" not in human

    scored = cli.ok("score", prefix, "0.7")
    assert f"run {run_id}: quality 0.70" in scored.stdout

    compared = cli.json("compare", "--step", "generate")
    assert compared[0]["model"] == "offline-analyst"
    assert compared[0]["mean_quality"] == 0.7

    resumed = cli.json("resume", prefix)
    assert resumed["run_id"] == run_id
    assert all(step["reused"] for step in resumed["steps"])


def test_a_prefix_two_runs_share_is_one_error_line(cli: Cli) -> None:
    import asyncio

    from analysis_pipeline import PostgresRunStore, RunRecord

    ids = [f"abcdef01-0000-4000-8000-00000000000{i}" for i in (1, 2)]

    async def seed() -> None:
        store = PostgresRunStore(_db_url(cli))
        try:
            for run_id in ids:
                await store.save_run(RunRecord(id=run_id, bill_id="B", jurisdiction="J"))
        finally:
            await store.aclose()

    asyncio.run(seed())
    line = one_error_line(cli("show", "abcdef01"))
    assert "'abcdef01' matches 2 runs" in line
    assert cli.json("show", "abcdef01-0000-4000-8000-000000000002")["id"] == ids[1]
    assert "no pipeline run with id 'abcdef02'" in one_error_line(cli("show", "abcdef02"))
    assert "no pipeline run with id" in one_error_line(cli("score", str(uuid.uuid4()), "0.5"))
    assert "no pipeline run with id" in one_error_line(cli("resume", "not-a-uuid"))


RUN_ID = "00000000-0000-4000-8000-000000000000"
MIGRATE_PIPELINE = "llm-common-db migrate --package analysis-pipeline"
# Each command that reads or writes runs, with arguments that would be valid on a good store.
COMMANDS = [
    ("runs",),
    ("show", RUN_ID),
    ("score", RUN_ID, "0.5"),
    ("compare",),
    ("resume", RUN_ID),
    ("run", str(EXAMPLE), "--bill-id", "EX-AB0042-2026", "--jurisdiction", "Exampleland"),
]


@pytest.fixture
def local(tmp_path: Path) -> Cli:
    """The CLI on the local store in a fresh directory (no database options)."""
    return Cli(tmp_path)


@pytest.fixture
def chat_db(postgres_url: str) -> Iterator[str]:
    """A database migrated for conversation-memory only (the chat app's): no pipeline tables."""
    from llm_common_db import migrate_sync

    admin = replace_url(postgres_url, dbname="postgres")
    name = new_database_name("_cli_chat")
    url = create_database(admin, name)
    try:
        migrate_sync(url, packages=["conversation-memory"])
        yield url
    finally:
        drop_database(admin, name)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (a hung server)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("show", RUN_ID), f"no pipeline run with id '{RUN_ID}'"),
        (("score", RUN_ID, "0.5"), "no pipeline run with id"),
        (("resume", RUN_ID), "no pipeline run with id"),
        (("show", "zz"), "no pipeline run with id 'zz'"),
        (("score", RUN_ID, "1.5"), "Invalid value for 'quality'"),
        (("runs", "--limit", "0"), "Invalid value for '--limit'"),
        (("runs", "--bogus"), "No such option: --bogus (see 'analysis-pipeline runs --help')"),
        (("bogus",), "No such command 'bogus'"),
        (("show",), "Missing argument 'run_id'"),
        (("run", str(EXAMPLE)), "Missing option '--bill-id'"),
        (("run", "missing.txt", "--bill-id", "B", "--jurisdiction", "J"), "does not exist"),
        (("run", str(EXAMPLE), "--bill-id", "B", "--jurisdiction", "J", "--model", "x=y"),
         "--model takes STEP=MODEL"),
        (("compare", "--step", "bogus"), "unknown step 'bogus'"),
        (("compare", "--csv", "no/such/dir/x.csv"), "directory no/such/dir does not exist"),
        (("runs", "--store", "typo-dir"), "--store typo-dir does not exist"),
        (("runs", "--store", "a-file"), "--store a-file is not a directory"),
        (("runs", "--database-url", "postgresql://h/db", "--supabase-url", "http://h"),
         "give either --database-url or --supabase-url, not both"),
        (("runs", "--supabase-url", "http://127.0.0.1:1"), "SUPABASE_SERVICE_ROLE_KEY"),
        (("runs", "--database-url", "not a url"), "invalid PostgreSQL connection string"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line(local: Cli, args: tuple[str, ...], says: str) -> None:
    (local.cwd / "a-file").write_text("not a directory")
    assert says in one_error_line(local(*args))


@pytest.mark.parametrize("args", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_missing_tables_name_the_migrate_command(
    local: Cli, chat_db: str, args: tuple[str]
) -> None:
    line = one_error_line(local(*args, "--database-url", chat_db))
    assert f"tables for analysis-pipeline are missing: run `{MIGRATE_PIPELINE}" in line


def test_missing_cost_tables_stop_run_before_any_output(local: Cli, chat_db: str) -> None:
    from llm_common_db import migrate_sync

    migrate_sync(chat_db, packages=["analysis-pipeline"])
    run = COMMANDS[-1]
    line = one_error_line(local(*run, "--database-url", chat_db))
    assert "llm-common-db migrate --package cost-tracker" in line
    assert one_error_line(local(*run, "--database-url", chat_db, "--json")) == line

    from llm_common_testkit import SupabaseServer

    with SupabaseServer(chat_db) as server:
        local.env["SUPABASE_SERVICE_ROLE_KEY"] = server.service_key
        line = one_error_line(local(*run, "--supabase-url", server.url))
    assert "tables for cost-tracker are missing: run `llm-common-db migrate --package" in line


@pytest.mark.parametrize("args", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_supabase_without_the_tables(local: Cli, chat_db: str, args: tuple[str]) -> None:
    from llm_common_testkit import SupabaseServer

    with SupabaseServer(chat_db) as server:
        local.env["SUPABASE_SERVICE_ROLE_KEY"] = server.service_key
        line = one_error_line(local(*args, "--supabase-url", server.url))
    assert f"tables for analysis-pipeline are missing: run `{MIGRATE_PIPELINE}" in line
    assert server.service_key not in line


def test_a_wrong_database_name_is_one_line_without_the_password(
    local: Cli, postgres_url: str
) -> None:
    url = replace_url(postgres_url, dbname="llmc_no_such_db", password="s3cret-pw")
    for args in COMMANDS:
        line = one_error_line(local(*args, "--database-url", url, "--connect-timeout", "2"))
        assert 'database "llmc_no_such_db" does not exist' in line
        assert "s3cret-pw" not in line


def test_unreachable_and_hung_databases_are_one_line(local: Cli, silent_port: int) -> None:
    refused = "postgresql://app:s3cret-pw@127.0.0.1:1/appdb"
    hung = f"postgresql://app:s3cret-pw@127.0.0.1:{silent_port}/appdb"
    for url in (refused, hung):
        for args in (COMMANDS[0], COMMANDS[-1]):
            line = one_error_line(local(*args, "--database-url", url, "--connect-timeout", "0.5"))
            assert "unavailable" in line
            assert "s3cret-pw" not in line
    for url in ("http://127.0.0.1:1", f"http://127.0.0.1:{silent_port}"):
        local.env["SUPABASE_KEY"] = "service-key-not-shown"
        line = one_error_line(local("runs", "--supabase-url", url, "--connect-timeout", "0.5"))
        assert "Supabase" in line
        assert "service-key-not-shown" not in line
