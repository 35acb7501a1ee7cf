"""The lease a running pipeline holds on its run, so `resume` can tell live runs from dead ones.

A process running a run refreshes the run's heartbeat every ``heartbeat_interval`` seconds. A
``running`` run whose heartbeat is older than ``lease_timeout`` belongs to a process that died,
and ``resume`` may take it over (atomically, in the store). If this process finds that it lost
the lease (its heartbeats could not reach the store for longer than the timeout and another
process took over), it stops the run at once, so the two never pay for the same step.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable

from ._errors import StoreError
from ._stores import RunStore

__all__ = ["LeaseKeeper", "new_owner_id"]

logger = logging.getLogger(__name__)


def new_owner_id() -> str:
    """A lease owner id naming this process: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseKeeper:
    """Refreshes one run's lease in the background while the run's code runs.

    Use as ``async with LeaseKeeper(...)`` around the run. When a heartbeat finds the lease
    held by someone else, ``on_lost`` is called and the task that entered the block is
    cancelled; ``lost`` then tells that cancellation apart from any other.

    Args:
        store: The run store.
        run_id: The run.
        owner: This process's owner id.
        interval: Seconds between heartbeats.
        on_lost: Called (once) before the run is cancelled for a lost lease.
    """

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        owner: str,
        interval: float,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.owner = owner
        self.interval = interval
        self.on_lost = on_lost
        self.lost = False
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LeaseKeeper:
        running = asyncio.current_task()
        assert running is not None, "LeaseKeeper needs a running task"
        self._task = asyncio.create_task(self._beat(running), name=f"lease:{self.run_id}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _beat(self, running: asyncio.Task[object]) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.interval)  # the heartbeat period, not a wait for an event
            try:
                held = await self.store.heartbeat(self.run_id, self.owner)
            except StoreError as exc:
                if not failing:  # one line per outage, not one per beat
                    logger.warning("run %s: heartbeat failed: %s", self.run_id, exc)
                failing = True
                continue
            if failing:
                logger.info("run %s: heartbeat reaches the store again", self.run_id)
                failing = False
            if not held:
                logger.warning("run %s: lease taken over by another process; stopping", self.run_id)
                self.lost = True
                if self.on_lost is not None:
                    self.on_lost()
                running.cancel()
                return
