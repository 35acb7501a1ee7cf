"""A batch worker in a process of its own, wired as in production, every edge on loopback.

Usage: python _batch_worker.py CONFIG_JSON

CONFIG_JSON holds: database_url, llm_base_url, search_base_url, concurrency, name, project,
limits ({provider: cap}), state_dir, and optionally heartbeat, stalled_after, lease_timeout,
daily_budget, wait, run_store_url (the run store's own URL, e.g. through an outage proxy).
The worker prints ``ready`` once it takes jobs and its stats as one JSON
line when it stops (SIGTERM stops it gracefully; SIGKILL is what the crash test sends).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from analysis_pipeline import (
    AnalysisPipeline,
    BatchWorker,
    CallLimiter,
    LimitedCostSink,
    PipelineConfig,
    PostgresRunStore,
)
from cost_tracker import CostTracker, PostgresCostStore
from llm_client import LLMClient, LLMConfig, ProviderSettings, RetryPolicy, prepare_for_serving
from web_search import SearchCache, WebSearchClient

ANALYST, REVIEWER = "openai/gpt-4o-mini", "openai/gpt-4.1-mini"


async def _no_wait(_: float) -> None:
    return None


async def main(cfg: dict[str, Any]) -> dict[str, Any]:
    url = cfg["database_url"]
    state = Path(cfg["state_dir"])
    state.mkdir(parents=True, exist_ok=True)
    budget = cfg.get("daily_budget")
    tracker = CostTracker(
        PostgresCostStore(url, max_size=4, connect_timeout=20),
        project=cfg.get("project", "batch"),
        daily_budget=Decimal(budget) if budget is not None else None,
        outbox_path=state / "outbox.sqlite3",
        retry_interval=None,
    )
    limiter = CallLimiter(
        url, cfg["limits"], connect_timeout=20, abandoned_after=cfg.get("abandoned_after", 120.0)
    )
    sink = LimitedCostSink(tracker, limiter)
    llm = LLMClient(
        cost_sink=sink,
        config=LLMConfig(providers={"openai": ProviderSettings(base_url=cfg["llm_base_url"])}),
        retry=RetryPolicy(sleep=_no_wait),
    )
    search = WebSearchClient(
        "zai",
        cache=SearchCache(None),
        cost_sink=sink,
        api_key="test-key",
        base_url=cfg["search_base_url"],
    )
    # Generous connect timeouts: the shared 2-core test machine can be far past saturation.
    store = PostgresRunStore(
        cfg.get("run_store_url", url), max_size=cfg["concurrency"] + 2, connect_timeout=20
    )
    config = PipelineConfig(
        heartbeat_interval=cfg.get("heartbeat", 1.0),
        lease_timeout=cfg.get("lease_timeout", 8.0),
        journal_dir=state / "journal",
        max_queries=cfg.get("max_queries", 3),
    )
    config.models = {"research": [ANALYST], "generate": [ANALYST], "review": [REVIEWER]}
    # The bare client: only the model's own queries are searched (the legislation service's
    # fixed query plan would multiply the calls per bill without testing anything more here).
    pipeline = AnalysisPipeline(llm, search, store=store, config=config)
    worker = BatchWorker(
        url,
        pipeline,
        concurrency=cfg["concurrency"],
        name=cfg["name"],
        wait=cfg.get("wait", True),
        heartbeat_interval=cfg.get("heartbeat", 1.0),
        stalled_after=cfg.get("stalled_after", 10.0),
        retry_delay=0.2,
        budget_retry_delay=cfg.get("budget_retry_delay", 60.0),
        outage_retry_delay=2.0,
        connect_timeout=20,
        journal_retry_interval=0.2,
    )
    prepare_for_serving()  # as apps do at start-up: nothing is imported on a first call
    try:
        print("ready", flush=True)
        cpu = time.process_time()
        stats = await worker.run()
        cpu = time.process_time() - cpu
    finally:
        for resource in (search, llm, tracker, limiter, store):
            await resource.aclose()
    out = dataclasses.asdict(stats)
    out["waits"] = limiter.waits
    out["cpu_seconds"] = cpu
    return out


if __name__ == "__main__":
    result = asyncio.run(main(json.loads(sys.argv[1])))
    print(json.dumps(result), flush=True)
