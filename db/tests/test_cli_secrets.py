"""`llm-common-db migrate | status | rollback` never show a password (issue 17, defect 1).

Run as a real subprocess, as an operator would: one `error: ...` line on stderr, exit 1, no
traceback, the password nowhere in stdout or stderr, and done within the connect timeout.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from llm_common_testkit import replace_url

SECRET = "Sentinel-cli-pw-4d81"
COMMANDS = ["migrate", "status", "rollback --to 0", "migrate --repair"]


def _cli(*args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["COLUMNS"] = "80"  # rich wraps at the terminal width: one line must stay one line
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "llm_common_db", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    return result, time.monotonic() - started


def _assert_one_clean_error(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert SECRET not in output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error: "), output
    return lines[0]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """Accepts TCP connections and never answers: a hung server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "url",
    [
        f"host=127.0.0.1 user=postgres {SECRET}",  # libpq: missing "=" after "<the password>"
        f"host=127.0.0.1 password='{SECRET}",  # unterminated quote
        f"postgresql://postgres:{SECRET}@127.0.0.1:5432/postgres?bogus=1",
        f"postgresql://postgres:{SECRET}@127.0.0.1:5432/postgres sslmode=require",
    ],
)
def test_malformed_url_is_one_redacted_line(command: str, url: str) -> None:
    result, _ = _cli(*command.split(), "--database-url", url)
    line = _assert_one_clean_error(result)
    assert "invalid PostgreSQL connection string" in line


@pytest.mark.postgres
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("part", "value", "reason"),
    [
        ("dbname", "llmc_no_such_database", 'database "llmc_no_such_database" does not exist'),
        ("user", "llmc_no_such_role", 'role "llmc_no_such_role" does not exist'),
    ],
)
def test_wrong_database_or_user(
    postgres_url: str, command: str, part: str, value: str, reason: str
) -> None:
    url = replace_url(postgres_url, password=SECRET, **{part: value})  # type: ignore[arg-type]
    result, _ = _cli(*command.split(), "--database-url", url)
    line = _assert_one_clean_error(result)
    assert reason in line
    assert ":***@" in line  # the URL is shown, redacted


@pytest.mark.parametrize("command", COMMANDS)
def test_unreachable_host_through_the_environment(command: str, closed_port: int) -> None:
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:{closed_port}/postgres"
    env_url = os.environ.copy()
    env_url["DATABASE_URL"] = url
    env_url["COLUMNS"] = "80"
    result = subprocess.run(
        [sys.executable, "-m", "llm_common_db", *command.split()],
        capture_output=True,
        text=True,
        timeout=60,
        env=env_url,
        check=False,
    )
    line = _assert_one_clean_error(result)
    assert "Connection refused" in line


def test_hung_server_fails_within_the_connect_timeout(silent_port: int) -> None:
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:{silent_port}/postgres"
    result, elapsed = _cli("migrate", "--database-url", url, "--connect-timeout", "2")
    line = _assert_one_clean_error(result)
    assert "timeout" in line.lower()
    assert elapsed < 2 + 4  # the timeout plus interpreter start-up on a busy machine


def test_unknown_package_is_refused() -> None:
    result, _ = _cli("migrate", "--package", "nope", "--database-url", "host=127.0.0.1")
    assert "unknown package 'nope'" in _assert_one_clean_error(result)


@pytest.mark.postgres
def test_migrate_with_package_applies_that_package_only(empty_db: str) -> None:
    url = replace_url(empty_db, password=SECRET)
    result, _ = _cli("migrate", "--package", "cost-tracker", "--database-url", url)
    assert result.returncode == 0, result.stderr
    assert "20261124000100_cost_tracking.sql" in result.stdout
    assert "pipeline" not in result.stdout
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("migrate", "--bogus"), "No such option: --bogus (see 'llm-common-db migrate --help')"),
        (("status", "--dir", "/no/such/migrations"), "'/no/such/migrations' does not exist"),
        (("migrate", "--connect-timeout", "soon"), "Invalid value for '--connect-timeout'"),
        (("migrat",), "No such command 'migrat'"),
        (("rollback", "--database-url", "postgresql://u@127.0.0.1:1/d"), "--to VERSION"),
    ],
)
def test_usage_errors_are_one_line(args: tuple[str, ...], says: str) -> None:
    result, _ = _cli(*args)
    assert says in _assert_one_clean_error(result)
