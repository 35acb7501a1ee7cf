"""Helpers shared by the client tests: a recording sink, an instant sleep, a fast policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from llm_client import CostEstimate, CostRecord, RetryPolicy
from llm_client._providers._routing import litellm_installed

LITELLM_INSTALLED = litellm_installed()
"""Whether this environment has the ``[litellm]`` extra (release.py tests both ways)."""


def needs_litellm(value: Any) -> Any:
    """A parametrize value whose case goes through LiteLLM (marked ``litellm``)."""
    return pytest.param(value, marks=pytest.mark.litellm)


@dataclass
class SleepRecorder:
    """An injected ``sleep`` that returns at once and remembers every requested wait."""

    waits: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def fast_policy(recorder: SleepRecorder | None = None, **kwargs: Any) -> RetryPolicy:
    """The production schedule, but sleeping through an instant recorder."""
    return RetryPolicy(sleep=recorder if recorder is not None else SleepRecorder(), **kwargs)


@dataclass
class RecordingSink:
    """A cost sink that admits everything and keeps the full event log."""

    events: list[tuple[str, Any]] = field(default_factory=list)

    async def reserve(self, estimate: CostEstimate) -> str:
        self.events.append(("reserve", estimate))
        return estimate.idempotency_id

    async def settle(self, reservation: str, record: CostRecord) -> None:
        assert reservation == record.idempotency_id
        self.events.append(("settle", record))

    async def release(self, reservation: str) -> None:
        self.events.append(("release", reservation))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]

    def settled(self) -> list[CostRecord]:
        return [item for kind, item in self.events if kind == "settle"]
