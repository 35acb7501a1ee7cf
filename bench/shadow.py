"""Shadow mode benchmark: what a shadow arm adds to the latency the caller sees.

    uv run python bench/shadow.py [--rounds 7] [--legacy-seconds 2]

The new pipeline runs offline (analysis_pipeline.testing's models and search fixture, in this
process) on a real bill with a local run store. In interleaved rounds, each round runs:

- baseline: ``pipeline.run`` directly (no shadow);
- slow legacy: ``ShadowRunner`` serving the new arm while a legacy arm that takes
  ``--legacy-seconds`` (longer than the new arm) runs as the shadow;
- failing legacy: ``ShadowRunner`` serving the new arm while the legacy arm raises at once.

Printed: the median served latency of each, its ratio to the baseline's median, and the load
average. A ratio near 1.0 for the slow legacy arm means its latency does not reach the caller.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# bench/ holds scripts named like packages: keep it off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

ROOT = Path(__file__).resolve().parent.parent
BILL = ROOT / "../shared/data/bills/CA-AB1482-2019.txt"


async def main(rounds: int, legacy_seconds: float) -> None:
    from analysis_pipeline import (
        AnalysisPipeline,
        LegacyResult,
        LocalRunStore,
        PipelineConfig,
        RolloutFlag,
        ShadowRunner,
    )
    from analysis_pipeline.testing import OfflineSearch, offline_models
    from llm_client import LLMClient

    text = BILL.read_text(encoding="utf-8")

    async def slow(bill_text: str, bill_id: str, jurisdiction: str) -> LegacyResult:
        await asyncio.sleep(legacy_seconds)
        return LegacyResult()

    async def failing(bill_text: str, bill_id: str, jurisdiction: str) -> LegacyResult:
        raise RuntimeError("legacy down")

    with tempfile.TemporaryDirectory() as tmp:
        store = LocalRunStore(Path(tmp))
        async with LLMClient() as llm, store:
            config = PipelineConfig(journal_dir=Path(tmp) / "journal")
            pipeline = AnalysisPipeline(llm, OfflineSearch(), store=store, config=config)
            models = offline_models()
            on = RolloutFlag(100)
            runners = {
                "slow legacy": ShadowRunner(pipeline, slow, flag=on, shadow_percent=100,
                                            shadow_timeout=60, models=models),
                "failing legacy": ShadowRunner(pipeline, failing, flag=on, shadow_percent=100,
                                               models=models),
            }  # fmt: skip
            times: dict[str, list[float]] = {"baseline": [], **{k: [] for k in runners}}
            await pipeline.run("warm-up", text, "California", models)
            for i in range(rounds):
                start = time.perf_counter()
                await pipeline.run(f"b{i}", text, "California", models)
                times["baseline"].append(time.perf_counter() - start)
                for name, runner in runners.items():
                    start = time.perf_counter()
                    await runner.run(f"{name}-{i}", text, "California")
                    times[name].append(time.perf_counter() - start)
                    await runner.drain()  # the shadow's tail stays out of the next timing
            for runner in runners.values():
                await runner.aclose()
            shadows = await store.shadow_results(limit=None)
    base = statistics.median(times["baseline"])
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"rounds: {rounds} interleaved; legacy shadow sleeps {legacy_seconds:g} s")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:>15}: median served {median * 1000:8.1f} ms  ratio {median / base:5.2f}")
    print(f"shadow records written: {len(shadows)} (expected {2 * rounds})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--legacy-seconds", type=float, default=2.0)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.legacy_seconds))
