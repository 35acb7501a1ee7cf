"""A local file that is not a SQLite database: a typed error naming it, never a raw sqlite3 one."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from cost_tracker import CostMetrics, CostTracker, LocalCostStore, StoreCorruptError, StoreError

from .cli_runner import run_report

GARBAGE = b"this is not a database, just bytes left by a broken copy\n" * 200


def corrupt_store(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "cost-tracker.sqlite"
    path.write_bytes(GARBAGE)
    return path


async def test_a_corrupt_local_store_is_a_typed_error_naming_the_file(tmp_path: Path) -> None:
    path = corrupt_store(tmp_path / "costs")
    async with CostTracker(LocalCostStore(tmp_path / "costs"), retry_interval=None) as tracker:
        with pytest.raises(StoreCorruptError) as corrupt:
            await tracker.log_cost(CostMetrics(provider="p", cost=Decimal("0.1")))
        with pytest.raises(StoreCorruptError):
            await tracker.get_daily_cost()
    assert isinstance(corrupt.value, StoreError)
    assert corrupt.value.path == str(path)
    assert str(path) in str(corrupt.value)
    assert "move it aside" in str(corrupt.value)
    assert path.read_bytes() == GARBAGE  # nothing overwritten: it may hold records


@pytest.mark.postgres
async def test_a_corrupt_outbox_is_a_typed_error_naming_the_file(
    postgres_db: str, tmp_path: Path
) -> None:
    from cost_tracker import PostgresCostStore

    outbox = tmp_path / "outbox.sqlite"
    outbox.write_bytes(GARBAGE)
    tracker = CostTracker(
        PostgresCostStore(postgres_db, max_size=2), outbox_path=outbox, retry_interval=None
    )
    with pytest.raises(StoreCorruptError) as corrupt:
        await tracker.__aenter__()
    await tracker.aclose()
    assert corrupt.value.path == str(outbox)
    assert "move it aside" in str(corrupt.value)
    assert outbox.read_bytes() == GARBAGE


def test_the_report_command_prints_one_error_line(tmp_path: Path) -> None:
    path = corrupt_store(tmp_path / "costs")
    done = run_report("--local-dir", str(tmp_path / "costs"))
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert str(path) in lines[0]
    assert "Traceback" not in done.stderr
