"""What only the local SQLite run store does: its own connection, its lifecycle, its errors."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from analysis_pipeline import LocalRunStore, RunRecord, RunStoreError, StepRecord, StoreCorruptError

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _run(bill: str) -> RunRecord:
    return RunRecord(
        bill_id=bill,
        jurisdiction="California",
        models={"generate": ["a"]},
        inputs_hash="h" * 64,
        inputs={"bill_text": "SEC. 1.", "max_rounds": 2},
        started_at=T0,
    )


async def test_concurrent_writes_from_many_runs_all_land(tmp_path: Path) -> None:
    store = LocalRunStore(tmp_path)
    runs = [_run(f"AB-{i}") for i in range(40)]

    async def one(run: RunRecord) -> None:
        await store.save_run(run)
        for key in ("research", "generate", "review"):
            await store.save_step(StepRecord(run_id=run.id, key=key, step=key, started_at=T0))

    await asyncio.gather(*(one(r) for r in runs))
    assert len(await store.list_runs(limit=None)) == 40
    steps = await store.list_steps(runs[7].id)
    assert [s.key for s in steps] == ["research", "generate", "review"]
    await store.aclose()


async def test_a_second_store_on_the_same_file_sees_committed_writes(tmp_path: Path) -> None:
    writer, reader = LocalRunStore(tmp_path), LocalRunStore(tmp_path)
    run = _run("AB-1")
    await writer.save_run(run)
    assert (await reader.get_run(run.id)).bill_id == "AB-1"
    await writer.aclose()
    await reader.aclose()


async def test_store_reopens_after_aclose(tmp_path: Path) -> None:
    store = LocalRunStore(tmp_path / "runs.sqlite3")
    first = _run("AB-1")
    await store.save_run(first)
    await store.aclose()
    await store.aclose()  # twice is harmless
    second = _run("AB-2")
    await store.save_run(second)
    assert {r.bill_id for r in await store.list_runs()} == {"AB-1", "AB-2"}
    await store.aclose()


async def test_unopenable_path_is_a_typed_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the project directory should be")
    store = LocalRunStore(blocker / "project")
    with pytest.raises(RunStoreError, match="cannot open run store"):
        await store.save_run(_run("AB-1"))
    await store.aclose()


async def test_a_corrupt_database_file_is_a_typed_error(tmp_path: Path) -> None:
    (tmp_path / "pipeline.sqlite3").write_bytes(b"this is not a SQLite database" * 100)
    store = LocalRunStore(tmp_path)
    with pytest.raises(StoreCorruptError) as failed:
        await store.list_runs()
    assert isinstance(failed.value, RunStoreError)
    assert failed.value.path == tmp_path / "pipeline.sqlite3"
    assert "pipeline.sqlite3" in str(failed.value)
    assert "move it aside" in str(failed.value)
    assert not isinstance(failed.value.__cause__, type(None))  # the sqlite3 error is kept
    await store.aclose()
