"""A process whose run was taken over stops at once and writes nothing over the new owner."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from analysis_pipeline import (
    AnalysisPipeline,
    LeaseLostError,
    LocalRunStore,
    PipelineConfig,
    ProgressEvent,
)
from analysis_pipeline.testing import OfflineSearch, offline_handler, task_of
from llm_client import LLMClient, LLMConfig, ProviderSettings
from llm_client.testing import FakeLLMServer, RecordedRequest, Reply

EXAMPLE = Path(__file__).resolve().parents[3] / "examples/bills/EX-AB0042-2026.txt"
MODELS = {"generate": "openai/gpt-4o-mini", "review": "openai/gpt-4.1-mini"}


async def test_a_taken_over_run_stops_and_leaves_the_new_owner_alone(tmp_path: Path) -> None:
    def slow_generate(request: RecordedRequest) -> Reply | None:
        answer = offline_handler(request)
        if task_of(request.messages) == "generate-analysis":
            return Reply.hang(20.0, then=answer)
        return answer

    with FakeLLMServer() as server:
        server.handler = slow_generate
        settings = LLMConfig(providers={"openai": ProviderSettings(base_url=server.base_url)})
        config = PipelineConfig(heartbeat_interval=0.1, lease_timeout=10.0)
        async with (
            LLMClient(config=settings) as llm,
            LocalRunStore(tmp_path) as store,
            LocalRunStore(tmp_path) as other,
        ):
            started = asyncio.Event()
            run_ids: list[str] = []

            def progress(event: ProgressEvent) -> None:
                if event.key == "generate" and event.kind == "started":
                    run_ids.append(event.run_id)
                    started.set()

            pipeline = AnalysisPipeline(llm, OfflineSearch(), store=store, config=config)
            task = asyncio.create_task(
                pipeline.run("EX", EXAMPLE.read_text(), "Exampleland", MODELS, progress=progress)
            )
            await asyncio.wait_for(started.wait(), 30)
            # Another process decides this one is dead (a zero lease) and takes the run over.
            taken = await other.claim_run(run_ids[0], "rescuer:1:x", 0.0)
            assert taken.lease_owner == "rescuer:1:x"
            with pytest.raises(LeaseLostError) as lost:
                await asyncio.wait_for(task, 5)  # far sooner than generate's 20 s
            assert lost.value.run_id == run_ids[0]
            run = await other.get_run(run_ids[0])
            assert (run.status, run.lease_owner, run.error) == ("running", "rescuer:1:x", None)
            keys = [s.key for s in await other.list_steps(run_ids[0])]
            assert keys == ["research"]  # no failed generate written over the new owner's run
