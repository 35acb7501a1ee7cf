"""A run's lease: a live run is never resumed (nothing paid twice); a dead one is taken over once.

The runs happen in real child processes against the loopback LLM server: one keeps running
(its generate call hangs at the server), one is SIGKILLed mid-generate.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from analysis_pipeline import (
    AnalysisPipeline,
    LocalRunStore,
    PipelineConfig,
    PipelineResult,
    RunInProgressError,
)
from analysis_pipeline.testing import OfflineSearch, offline_handler, task_of
from llm_client import LLMClient, LLMConfig, ProviderSettings, count_tokens
from llm_client.testing import FakeLLMServer, RecordedRequest, Reply

CHILD = Path(__file__).with_name("_child_run.py")
HEARTBEAT, LEASE = 0.25, 5.0  # generous: a loaded CI machine can stall a process


@pytest.fixture
def llm_server() -> Iterator[FakeLLMServer]:
    def handle(request: RecordedRequest) -> Reply | None:
        if task_of(request.messages) != "generate-analysis":
            return offline_handler(request)
        if server.generate_after is None:  # type: ignore[attr-defined]
            return Reply.hang()  # until the process that asked is killed
        answer = offline_handler(request)
        return Reply.hang(server.generate_after, then=answer)  # type: ignore[attr-defined]

    with FakeLLMServer() as server:
        server.generate_after = None  # type: ignore[attr-defined]
        server.handler = handle
        yield server


BACKENDS = ["local", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the child and the resuming pipelines keep runs: a directory or a database URL."""
    local = request.param == "local"
    return str(tmp_path / "state") if local else str(request.getfixturevalue("postgres_db"))


def _store(spec: str) -> Any:
    if spec.startswith("postgresql://"):
        from analysis_pipeline import PostgresRunStore

        return PostgresRunStore(spec)
    return LocalRunStore(spec)


@pytest.fixture
async def stores(store_spec: str) -> AsyncIterator[list[Any]]:
    opened: list[Any] = []
    yield opened
    for store in opened:
        await store.aclose()


async def _pipeline(llm: LLMClient, spec: str, opened: list[Any]) -> AnalysisPipeline:
    store = _store(spec)
    opened.append(store)
    config = PipelineConfig(heartbeat_interval=HEARTBEAT, lease_timeout=LEASE)
    return AnalysisPipeline(llm, OfflineSearch(), store=store, config=config)


async def _start_child(spec: str, server: FakeLLMServer, log: Path) -> tuple[Any, str]:
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(CHILD), spec, server.base_url, str(HEARTBEAT), str(LEASE),
            stdout=asyncio.subprocess.PIPE, stderr=err,
        )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
    run_id = line.decode().strip()
    assert run_id, log.read_text()
    return proc, run_id


def _count(server: FakeLLMServer, task: str) -> int:
    return sum(task_of(r.messages) == task for r in server.requests)


async def _wait_until(predicate: Any, what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_live_run_is_refused_and_a_killed_one_is_taken_over_once(
    llm_server: FakeLLMServer, store_spec: str, stores: list[Any], tmp_path: Path
) -> None:
    # Load the tokenizer now: its first load blocks the loop for longer than a short test lease.
    count_tokens("warm up", model="openai/gpt-4o-mini")
    proc, run_id = await _start_child(store_spec, llm_server, tmp_path / "child.log")
    settings = LLMConfig(providers={"openai": ProviderSettings(base_url=llm_server.base_url)})
    async with LLMClient(config=settings) as llm:
        try:
            observer = await _pipeline(llm, store_spec, stores)
            first = await observer.store.get_run(run_id)
            assert first.status == "running"
            assert first.heartbeat_at is not None

            # Live: the child keeps heartbeating past several lease timeouts; resume is refused
            # every time and sends nothing to the provider.
            async def beat_past_lease() -> bool:
                now = await observer.store.get_run(run_id)
                assert now.heartbeat_at is not None
                assert first.heartbeat_at is not None
                return now.heartbeat_at > first.heartbeat_at + timedelta(seconds=LEASE + 0.5)

            await _wait_until(beat_past_lease, "heartbeats past a lease timeout")
            sent = len(llm_server.requests)
            with pytest.raises(RunInProgressError) as refused:
                await observer.resume(run_id)
            assert run_id in str(refused.value)
            assert refused.value.owner is not None
            assert str(proc.pid) in refused.value.owner
            assert len(llm_server.requests) == sent  # nothing paid twice
            assert (await observer.store.get_run(run_id)).status == "running"
        finally:
            if proc.returncode is None:
                os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
        assert proc.returncode == -signal.SIGKILL

        # Dead: once its lease expires, two concurrent resumes -> exactly one takes it over.
        async def lease_expired() -> bool:
            run = await observer.store.get_run(run_id)
            assert run.heartbeat_at is not None
            return datetime.now(UTC) - run.heartbeat_at > timedelta(seconds=LEASE + 0.3)

        await _wait_until(lease_expired, "the killed child's lease to expire")
        # The winner's generate takes a while, so the other resume surely meets a live run.
        llm_server.generate_after = 2.0  # type: ignore[attr-defined]
        rivals = [await _pipeline(llm, store_spec, stores) for _ in range(2)]
        outcomes = await asyncio.gather(*(p.resume(run_id) for p in rivals), return_exceptions=True)
    results = [o for o in outcomes if isinstance(o, PipelineResult)]
    assert len(results) == 1, outcomes
    assert sum(isinstance(o, RunInProgressError) for o in outcomes) == 1, outcomes
    result = results[0]
    assert [(s.key, s.reused) for s in result.steps] == [
        ("research", True), ("generate", False), ("review:1", False)
    ]  # fmt: skip
    assert _count(llm_server, "propose-queries") == 1  # research paid once, by the child
    assert _count(llm_server, "generate-analysis") == 2  # the child's (never answered) + one
    assert _count(llm_server, "review-analysis") == 1
    run = await observer.store.get_run(run_id)
    assert run.status == "completed"
    winner = next(p for p, o in zip(rivals, outcomes, strict=True) if o is result)
    assert run.lease_owner == winner.owner
