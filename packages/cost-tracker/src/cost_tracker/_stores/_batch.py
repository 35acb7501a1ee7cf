"""Group commit: concurrent writes of one store share a transaction.

Budget counters are hot rows: every write of a project updates the same daily and monthly
rows, so transactions queue on their row locks for a whole commit each. Sending the writes that
arrive while one batch commits as the next batch (one transaction, applied in order, each with
its own outcome) multiplies throughput without giving up exactness or durability: every caller
still returns only after its write committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Batcher"]

ItemT = TypeVar("ItemT")
R = TypeVar("R")


class Batcher(Generic[ItemT, R]):
    """Run submitted items in batches, at most ``max_inflight`` batches at a time.

    Args:
        run: Applies a batch; returns one result or exception per item, in order.
        max_batch: Largest batch.
        max_inflight: Batches running concurrently (1 for a single-writer store).
    """

    def __init__(
        self,
        run: Callable[[list[ItemT]], Awaitable[Sequence[R | BaseException]]],
        max_batch: int = 256,
        max_inflight: int = 1,
    ) -> None:
        self._run = run
        self._max_batch = max_batch
        self._max_inflight = max_inflight
        self._pending: list[tuple[ItemT, asyncio.Future[R]]] = []
        self._drainers: set[asyncio.Task[None]] = set()

    async def submit(self, item: ItemT) -> R:
        """Queue ``item`` and wait for its own result."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        # A finished drainer leaves the set only in a later callback: count the live ones.
        if sum(not drainer.done() for drainer in self._drainers) < self._max_inflight:
            drainer = asyncio.ensure_future(self._drain())
            self._drainers.add(drainer)
            drainer.add_done_callback(self._drainers.discard)
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                results: Sequence[R | BaseException] = await self._run([item for item, _ in batch])
            except BaseException as exc:  # the whole batch failed (connection, lock timeout)
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def aclose(self) -> None:
        """Wait for the batches in flight."""
        if self._drainers:
            await asyncio.gather(*self._drainers, return_exceptions=True)
