"""A paid step's result survives a run-store outage: resume uses it instead of paying again."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from analysis_pipeline import AnalysisPipeline, PipelineConfig, PipelineRunError
from analysis_pipeline.testing import OfflineSearch, offline_handler, task_of
from llm_client import LLMClient, LLMConfig, ProviderSettings, count_tokens
from llm_client.testing import FakeLLMServer, RecordedRequest, Reply

pytestmark = pytest.mark.postgres
EXAMPLE = Path(__file__).resolve().parents[3] / "examples/bills/EX-AB0042-2026.txt"
MODELS = {"generate": "openai/gpt-4o-mini", "review": "openai/gpt-4.1-mini"}


def _count(server: FakeLLMServer, task: str) -> int:
    return sum(task_of(r.messages) == task for r in server.requests)


async def test_store_cut_when_generate_finishes_then_resume_pays_nothing_twice(
    postgres_db: str, tcp_proxy: Any, tmp_path: Path
) -> None:
    from analysis_pipeline import PostgresRunStore

    count_tokens("warm up", model="openai/gpt-4o-mini")  # no tokenizer load inside a lease
    url = tcp_proxy.url_for(postgres_db)
    config = PipelineConfig(
        heartbeat_interval=0.2, lease_timeout=1.5, journal_dir=tmp_path / "journal"
    )

    def cut_at_generate(request: RecordedRequest) -> Reply | None:
        if task_of(request.messages) == "generate-analysis":
            tcp_proxy.stop()  # the database vanishes while generate is being answered
        return offline_handler(request)

    with FakeLLMServer() as server:
        server.handler = cut_at_generate
        settings = LLMConfig(providers={"openai": ProviderSettings(base_url=server.base_url)})
        async with LLMClient(config=settings) as llm:
            # The first process: its run store goes away just as generate is paid for.
            store = PostgresRunStore(url, connect_timeout=1.0)
            pipeline = AnalysisPipeline(llm, OfflineSearch(), store=store, config=config)
            try:
                with pytest.raises(PipelineRunError) as failed:
                    await pipeline.run("EX-AB0042-2026", EXAMPLE.read_text(), "Exampleland", MODELS)
            finally:
                await store.aclose()
            run_id = failed.value.run_id
            assert failed.value.step == "generate"
            journaled = list((tmp_path / "journal" / run_id).glob("*.json"))
            assert [p.name for p in journaled] == ["generate.json"]
            assert _count(server, "generate-analysis") == 1

            # The database is back; another process resumes once the first one's lease expired.
            tcp_proxy.start()
            server.handler = offline_handler
            store = PostgresRunStore(url, connect_timeout=5.0, breaker_interval=0.5)
            try:
                deadline = time.monotonic() + 30
                while True:
                    run = await store.get_run(run_id)
                    assert run.heartbeat_at is not None
                    if datetime.now(UTC) - run.heartbeat_at > timedelta(seconds=1.8):
                        break
                    assert time.monotonic() < deadline, "the lease never expired"
                    await asyncio.sleep(0.05)
                resumed = AnalysisPipeline(llm, OfflineSearch(), store=store, config=config)
                result = await resumed.resume(run_id)
                assert [(s.key, s.reused) for s in result.steps] == [
                    ("research", True), ("generate", True), ("review:1", False)
                ]  # fmt: skip
                assert _count(server, "generate-analysis") == 1  # not paid again
                assert _count(server, "propose-queries") == 1
                assert (await store.get_run(run_id)).status == "completed"
                steps = {s.key: s for s in await store.list_steps(run_id)}
                assert steps["generate"].status == "completed"
                assert steps["generate"].output is not None
                assert not (tmp_path / "journal" / run_id).exists()  # handed over, forgotten
            finally:
                await store.aclose()
