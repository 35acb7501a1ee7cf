"""Group commit: every submitted item gets its own result, even right after a batch ends."""

from __future__ import annotations

import asyncio

from cost_tracker._stores._batch import Batcher


async def test_items_get_their_own_results_and_exceptions() -> None:
    batches: list[list[int]] = []

    async def run(items: list[int]) -> list[int | BaseException]:
        batches.append(items)
        await asyncio.sleep(0)
        return [ValueError(i) if i == 3 else i * 10 for i in items]

    batcher: Batcher[int, int] = Batcher(run, max_batch=4)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(10)), return_exceptions=True)
    assert [r if isinstance(r, int) else "err" for r in results] == [
        0, 10, 20, "err", 40, 50, 60, 70, 80, 90
    ]  # fmt: skip
    assert all(len(batch) <= 4 for batch in batches)
    assert len(batches) < 10  # items really were grouped
    # Submitting right after a batch finished must start a new one (no lost wake-up).
    assert await asyncio.wait_for(batcher.submit(5), timeout=10) == 50
    await batcher.aclose()


async def test_a_failing_batch_fails_each_of_its_items() -> None:
    async def run(items: list[int]) -> list[int]:
        raise ConnectionError("gone")

    batcher: Batcher[int, int] = Batcher(run, max_inflight=2)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
