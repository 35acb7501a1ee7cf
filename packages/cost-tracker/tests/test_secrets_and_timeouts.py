"""`cost-tracker report` never shows a database password (issue 17, defect 1).

A real subprocess, as an operator runs it: one `error: ...` line, exit 1, no traceback, the
sentinel password nowhere in stdout or stderr, done within the connect timeout.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pytest
from llm_common_testkit import replace_url
from llm_common_testkit.costs import estimate

from .cli_runner import run_cli, run_report

SECRET = "Sentinel-cost-pw-93c1"


def report(url: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = run_report("--database-url", url)
    return done, time.monotonic() - started


def one_clean_error(done: subprocess.CompletedProcess[str]) -> str:
    """The one ``error:`` line of a failed run, after checking nothing else was printed."""
    output = done.stdout + done.stderr
    lines = output.strip().splitlines()
    leaks = (SECRET in output, "Traceback" in output)
    assert (done.returncode, len(lines), leaks) == (1, 1, (False, False)), output
    assert lines[0].startswith("error: "), output
    return lines[0]


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://postgres:{SECRET}@[::1/db",  # unparseable URI (libpq quotes it)
        f"host=127.0.0.1 password={SECRET} port=notaport dbname=x",
        f"postgresql://postgres:{SECRET}@127.0.0.1:notaport/db",
    ],
)
def test_a_malformed_connection_string_is_one_redacted_line(url: str) -> None:
    done, _ = report(url)
    one_clean_error(done)


@pytest.mark.parametrize(
    "url",
    [f"postgresql://postgres:{SECRET}@[::1/db", f"postgresql://postgres:{SECRET}@127.0.0.1:1/db"],
)
def test_db_migrate_failures_are_one_redacted_line(url: str) -> None:
    one_clean_error(run_cli("db", "migrate", "--database-url", url))


def test_an_unreachable_database_is_one_redacted_line_within_the_timeout() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done, elapsed = report(f"postgresql://postgres:{SECRET}@127.0.0.1:{port}/costs")
    line = one_clean_error(done)
    assert "unreachable" in line
    assert elapsed < 30


@pytest.mark.postgres
def test_a_wrong_database_is_one_redacted_line(postgres_db: str) -> None:
    url = replace_url(postgres_db, password=SECRET, dbname="no_such_database_for_costs")
    done, _ = report(url)
    one_clean_error(done)


async def test_the_store_keeps_the_password_out_of_logs_errors_and_reprs(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    from cost_tracker import CostMetrics, CostTracker, PostgresCostStore, StoreUnavailableError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:{port}/costs"
    caplog.set_level(logging.DEBUG)
    store = PostgresCostStore(url, connect_timeout=1.0)
    tracker = CostTracker(
        store, daily_budget="1", outbox_path=tmp_path / "outbox.sqlite", retry_interval=None
    )
    async with tracker:
        with pytest.raises(StoreUnavailableError) as unavailable:
            await tracker.reserve(estimate())
        await tracker.log_cost(CostMetrics(provider="p", cost=Decimal("0.1")))
        assert await tracker.outbox_size() == 1  # nothing lost
    texts = [caplog.text, str(unavailable.value), repr(store), repr(tracker)]
    assert all(SECRET not in text for text in texts)
    assert SECRET not in str(store._pg.pool.conninfo)


def silent_server() -> socket.socket:
    """Accepts TCP connections and never answers: a hung database."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


async def test_an_unreachable_store_fails_within_connect_timeout_and_keeps_records(
    tmp_path: Path,
) -> None:
    # Issue 17, defect 6: the connect wait was unbounded by anything the caller could set.
    from cost_tracker import CostMetrics, CostTracker, PostgresCostStore, StoreUnavailableError

    with silent_server() as sock:
        port = sock.getsockname()[1]
        store = PostgresCostStore(f"postgresql://postgres@127.0.0.1:{port}/c", connect_timeout=1.0)
        tracker = CostTracker(
            store, daily_budget="1", outbox_path=tmp_path / "outbox.sqlite", retry_interval=None
        )
        loop = asyncio.get_running_loop()
        async with tracker:
            started = loop.time()
            with pytest.raises(StoreUnavailableError):
                await tracker.reserve(estimate())
            assert loop.time() - started < 3.0
            started = loop.time()
            for _ in range(5):  # the outage costs one wait, not one per write
                await tracker.log_cost(CostMetrics(provider="p", cost=Decimal("0.1")))
            assert loop.time() - started < 3.0
            assert await tracker.outbox_size() == 5


@pytest.mark.postgres
async def test_missing_migrations_name_the_command(tmp_path: Path) -> None:
    from cost_tracker import CostMetrics, CostTracker, PostgresCostStore, StoreError
    from llm_common_testkit import (
        create_database,
        drop_database,
        new_database_name,
        require_postgres,
    )

    admin = require_postgres()
    name = new_database_name("_bare")
    url = create_database(admin, name)
    try:
        tracker = CostTracker(
            PostgresCostStore(url), outbox_path=tmp_path / "outbox.sqlite", retry_interval=None
        )
        async with tracker:
            with pytest.raises(StoreError) as missing:
                await tracker.log_cost(CostMetrics(provider="p", cost=Decimal("0.1")))
        assert "llm-common-db migrate --package cost-tracker" in str(missing.value)
    finally:
        drop_database(admin, name)


async def test_an_unreachable_supabase_fails_fast_and_keeps_records(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    from cost_tracker import CostMetrics, CostTracker, StoreUnavailableError, SupabaseCostStore

    caplog.set_level(logging.DEBUG)
    with silent_server() as sock:  # accepts, never answers: only the timeouts end the wait
        port = sock.getsockname()[1]
        store = await SupabaseCostStore.connect(
            f"http://127.0.0.1:{port}", SECRET, http_timeout=1.0, connect_timeout=1.0
        )
        tracker = CostTracker(
            store, daily_budget="1", outbox_path=tmp_path / "outbox.sqlite", retry_interval=None
        )
        loop = asyncio.get_running_loop()
        async with tracker:
            started = loop.time()
            with pytest.raises(StoreUnavailableError) as unavailable:
                await tracker.reserve(estimate())
            assert loop.time() - started < 5.0
            await tracker.log_cost(CostMetrics(provider="p", cost=Decimal("0.1")))
            assert await tracker.outbox_size() == 1
    assert SECRET not in caplog.text + str(unavailable.value) + repr(store)


def test_the_report_command_honours_connect_timeout() -> None:
    with silent_server() as sock:
        port = sock.getsockname()[1]
        started = time.monotonic()
        done = run_report(
            "--database-url",
            f"postgresql://postgres:{SECRET}@127.0.0.1:{port}/c",
            "--connect-timeout",
            "1",
        )
        elapsed = time.monotonic() - started
    assert "unreachable" in one_clean_error(done)
    assert elapsed < 15  # interpreter start-up included; the default wait alone is 5 s


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("report", "--since", "April"), "'April' is not a YYYY-MM-DD date"),
        (("report", "--since", "2026-04-01", "--by", "bogus"), "Invalid value for '--by'"),
        (("report", "--bogus"), "No such option: --bogus (see 'cost-tracker report --help')"),
        (("reprot",), "No such command 'reprot'"),
        (("report", "--since", "2026-04-01", "--local-dir", "a-file"), "is not a directory"),
        (("report", "--since", "2026-04-01", "--local-dir", "no-such-dir"), "does not exist"),
        (("export", "--since", "2026-04-01", "-o", "no/such/dir/x.csv"), "cannot write"),
        (("db", "migrate"), "give --database-url or set DATABASE_URL"),
    ],
)
def test_usage_errors_and_bad_paths_are_one_line(
    args: tuple[str, ...], says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a directory")
    assert says in one_clean_error(run_cli(*args))
