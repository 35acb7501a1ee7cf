"""The local SQLite backend: state directory, corrupt files, failed and cancelled saves."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conversation_memory import (
    ConversationMemory,
    LocalMessageStore,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)

FILE = "conversation-memory.sqlite3"


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


async def _save_one(store: LocalMessageStore) -> None:
    memory = ConversationMemory(store, uuid.uuid4())
    assert (await memory.save_message("user", "hello")).seq == 1


async def test_default_file_goes_under_llm_common_dir(
    tmp_path: Path, cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    monkeypatch.setenv("LLM_COMMON_DIR", str(state))
    async with LocalMessageStore() as store:
        assert store.path == state / FILE
        await _save_one(store)
    assert (state / FILE).is_file()
    assert not (cwd / ".llm-common").exists()


async def test_without_llm_common_dir_the_file_is_under_dot_llm_common(
    cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLM_COMMON_DIR", raising=False)
    async with LocalMessageStore() as store:
        await _save_one(store)
    assert (cwd / ".llm-common" / FILE).is_file()


async def test_an_explicit_path_wins_over_llm_common_dir(
    tmp_path: Path, cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_COMMON_DIR", str(tmp_path / "state"))
    async with LocalMessageStore(tmp_path / "mine.sqlite3") as store:
        await _save_one(store)
    assert (tmp_path / "mine.sqlite3").is_file()
    assert not (tmp_path / "state").exists()


async def test_a_file_that_is_not_a_database_is_a_typed_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / FILE
    path.write_bytes(b"this is not a SQLite database, just some text\n" * 200)
    store = LocalMessageStore(path)
    with pytest.raises(StoreCorruptError) as raised:
        await _save_one(store)
    assert not isinstance(raised.value, sqlite3.Error)
    assert isinstance(raised.value, StoreError)
    assert raised.value.path == str(path)
    assert str(path) in str(raised.value)
    assert "move it aside" in str(raised.value)
    await store.aclose()
    # The recovery the message gives works: move it aside and start again.
    path.rename(tmp_path / "aside.sqlite3")
    async with LocalMessageStore(path) as fresh:
        await _save_one(fresh)
    assert (tmp_path / "aside.sqlite3").read_bytes().startswith(b"this is not")


async def test_a_damaged_database_is_a_typed_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / FILE
    user = uuid.uuid4()
    async with LocalMessageStore(path) as store:
        memory = ConversationMemory(store, user)
        for i in range(200):
            await memory.save_message("user", f"message {i} " + "x" * 200)
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = bytearray(path.read_bytes())
    page = 4096
    for start in range(2 * page, len(data) - page, page):  # keep the header, wreck the rest
        data[start : start + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))

    async with LocalMessageStore(path) as damaged:
        with pytest.raises(StoreCorruptError, match="move it aside") as raised:
            await ConversationMemory(damaged, user).history(limit=1000)
    assert str(path) in str(raised.value)


@pytest.fixture
def write_lock(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """Another process-like writer holding the database's write lock."""
    path = tmp_path / FILE
    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.close()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    yield holder
    holder.close()


async def test_a_save_that_cannot_be_written_raises_and_stores_nothing(
    tmp_path: Path, write_lock: sqlite3.Connection
) -> None:
    async with LocalMessageStore(tmp_path / FILE, timeout=0.2) as store:
        memory = ConversationMemory(store, uuid.uuid4())
        write_lock.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailableError, match="locked"):
            await memory.save_message("user", "while another process writes")
        write_lock.execute("COMMIT")
        assert await memory.history() == []
        assert (await memory.save_message("user", "retried")).seq == 1
        assert [m.content for m in await memory.history()] == ["retried"]


async def test_a_cancelled_save_leaves_no_half_write_and_the_store_usable(
    tmp_path: Path, write_lock: sqlite3.Connection
) -> None:
    async with LocalMessageStore(tmp_path / FILE, threads=1, timeout=30) as store:
        memory = ConversationMemory(store, uuid.uuid4())
        await memory.save_message("user", "first")
        write_lock.execute("BEGIN IMMEDIATE")
        saving = asyncio.create_task(memory.save_message("user", "cancelled"))
        deadline = time.monotonic() + 10
        while store._idle is not None and store._idle.idle and time.monotonic() < deadline:
            await asyncio.sleep(0)  # until the save holds the store's only connection
        assert not saving.done()
        saving.cancel()
        releaser = threading.Timer(0.2, lambda: write_lock.execute("COMMIT"))
        releaser.start()
        with pytest.raises(asyncio.CancelledError):
            await saving
        releaser.join()
        # The one connection came back clean: the next save is not inside a stale transaction.
        assert (await memory.save_message("user", "after")).content == "after"
        history = await memory.history()
    # Cancelled while waiting for the write lock: rolled back, so neither its row nor its
    # sequence number survives.
    assert [(m.seq, m.content) for m in history] == [(1, "first"), (2, "after")]


async def test_closing_ends_every_thread_and_closed_is_a_typed_error(tmp_path: Path) -> None:
    before = threading.active_count()
    store = LocalMessageStore(tmp_path / FILE, threads=3)
    await _save_one(store)
    assert threading.active_count() >= before + 3
    await store.aclose()
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert threading.active_count() == before
    with pytest.raises(StoreUnavailableError, match="closed"):
        await _save_one(store)
    await store.aclose()


def test_a_process_that_never_closes_its_store_still_exits(tmp_path: Path) -> None:
    script = (
        "import asyncio, uuid, sys\n"
        "from conversation_memory import ConversationMemory, LocalMessageStore\n"
        f"STORE = LocalMessageStore({str(tmp_path / FILE)!r})\n"
        "async def main():\n"
        "    await ConversationMemory(STORE, uuid.uuid4()).save_message('user', 'hi')\n"
        "asyncio.run(main())\n"
        "print('done')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"


def test_one_store_serves_several_event_loops_in_turn(tmp_path: Path) -> None:
    store = LocalMessageStore(tmp_path / FILE, threads=1)
    memory = ConversationMemory(store, uuid.uuid4())

    async def burst(n: int) -> int:
        # More concurrent saves than connections: some wait for one (on this loop).
        await asyncio.gather(*(memory.save_message("user", f"{n}.{i}") for i in range(5)))
        return len(await memory.history())

    assert asyncio.run(burst(1)) == 5
    assert asyncio.run(burst(2)) == 10  # a second asyncio.run(): a new loop, same store
    asyncio.run(store.aclose())
