"""A pipeline worker process for the chaos suite: runs bills until it is SIGKILLed.

Usage: ``python _worker.py CONFIG_JSON`` where the JSON holds a ``StackConfig`` (``stack``)
and ``runs``: ``[[run bill id, real bill id, jurisdiction], ...]``. The review model is
``openai/gpt-4.1-nano``, which the test's fake provider holds, so the worker is stuck mid-run
(research and generate paid and stored, review in flight) when it is killed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import traceback
from pathlib import Path

_SUPPORT = Path(__file__).with_name("_support.py")
_spec = importlib.util.spec_from_file_location("chaos_support", _SUPPORT)
assert _spec is not None
assert _spec.loader is not None
support = importlib.util.module_from_spec(_spec)
sys.modules["chaos_support"] = support
_spec.loader.exec_module(support)


async def main(config: dict) -> None:
    cfg = support.StackConfig(**config["stack"])
    async with support.open_stack(cfg) as stack:
        models = {"review": [f"openai/{support.WORKER_REVIEW}"]}
        # One store call before the concurrent runs: a fresh PostgresRunStore's first concurrent
        # uses race (test_first_concurrent_use_of_a_run_store); this worker is not the place
        # that checks it.
        await stack.pipeline.resolve_models(models)

        async def one(run_id: str, bill: str, jurisdiction: str) -> None:
            await stack.pipeline.run(run_id, support.bill_text(bill), jurisdiction, models)

        results = await asyncio.gather(*(one(*r) for r in config["runs"]), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                traceback.print_exception(result)
        print(f"worker finished without being killed: {results!r}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
