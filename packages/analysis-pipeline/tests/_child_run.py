"""A pipeline run in a process of its own (for the lease and crash tests).

Usage: python _child_run.py STORE LLM_BASE_URL [HEARTBEAT LEASE]

STORE is a directory (local store) or a postgresql:// URL. The child prints the run id on a line
of its own as soon as generate starts, then goes on (the parent decides what the LLM answers).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from analysis_pipeline import AnalysisPipeline, LocalRunStore, PipelineConfig
from analysis_pipeline.testing import OfflineSearch
from llm_client import LLMClient, LLMConfig, ProviderSettings

EXAMPLE = Path(__file__).resolve().parents[3] / "examples/bills/EX-AB0042-2026.txt"
MODELS = {"generate": "openai/gpt-4o-mini", "review": "openai/gpt-4.1-mini"}


def make_store(spec: str) -> object:
    if spec.startswith("postgresql://"):
        from analysis_pipeline import PostgresRunStore

        return PostgresRunStore(spec)
    return LocalRunStore(spec)


async def main(spec: str, base_url: str, heartbeat: float, lease: float) -> None:
    settings = LLMConfig(providers={"openai": ProviderSettings(base_url=base_url)})
    store = make_store(spec)
    config = PipelineConfig(heartbeat_interval=heartbeat, lease_timeout=lease)

    def progress(event: object) -> None:
        if getattr(event, "kind", "") == "started" and getattr(event, "key", "") == "generate":
            print(getattr(event, "run_id", ""), flush=True)

    async with LLMClient(config=settings) as llm:
        pipeline = AnalysisPipeline(llm, OfflineSearch(), store=store, config=config)  # type: ignore[arg-type]
        try:
            await pipeline.run("EX-AB0042-2026", EXAMPLE.read_text(), "Exampleland", MODELS,
                               progress=progress)  # fmt: skip
        finally:
            await store.aclose()  # type: ignore[attr-defined]


if __name__ == "__main__":
    args = sys.argv[1:]
    beat, lease = (float(args[2]), float(args[3])) if len(args) > 3 else (0.25, 5.0)
    asyncio.run(main(args[0], args[1], beat, lease))
