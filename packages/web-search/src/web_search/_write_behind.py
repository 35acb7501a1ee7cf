"""Write-behind with group commit: each item written as soon as possible, few writes in all.

A research set's answers arrive one by one; writing each at once keeps a crash from losing an
answer that was paid for, and writing them one statement each would multiply the statements.
:class:`WriteBehind` does both: an item added while no write runs starts one at once; items
added while a write runs wait for it and then go together in the next.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["WriteBehind"]

T = TypeVar("T")


class WriteBehind(Generic[T]):
    """At most one ``write(items)`` running; what arrives meanwhile goes in the next one.

    Args:
        write: Writes a batch; it should handle its own failures (a cache write logs them).
    """

    def __init__(self, write: Callable[[Sequence[T]], Awaitable[None]]) -> None:
        self._write = write
        self._pending: list[T] = []
        self._writer: asyncio.Task[None] | None = None

    def add(self, item: T) -> None:
        """Queue ``item``; a write starts now unless one is running (it takes the item next)."""
        self._pending.append(item)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            await self._write(batch)

    async def drain(self) -> None:
        """Wait until every queued item is written (shielded: the items were paid for)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)
        if self._writer is not None and not self._writer.cancelled():
            self._writer.result()
