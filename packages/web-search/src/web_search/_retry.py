"""Retry policy for rate-limited and failed upstream calls."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tenacity import RetryCallState

from ._errors import RateLimitError

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of rate-limited and failed (5xx, connection) calls.

    Attributes:
        attempts: Attempts in all, the first included (3).
        initial_wait: First backoff in seconds; doubles per attempt, plus jitter.
        max_wait: Longest backoff without a ``Retry-After``.
        max_retry_after: Longest ``Retry-After`` honoured; a longer one fails at once.
    """

    attempts: int = 3
    initial_wait: float = 1.0
    max_wait: float = 8.0
    max_retry_after: float = 60.0

    def wait(self, state: RetryCallState) -> float:
        """Seconds before the next attempt: ``Retry-After`` when given, else jittered backoff."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimitError) and exc.retry_after is not None:
            return float(exc.retry_after)
        backoff = min(self.max_wait, self.initial_wait * 2.0 ** (state.attempt_number - 1))
        # Full jitter in the upper half spreads synchronised clients without shrinking waits to 0.
        return backoff * (0.5 + 0.5 * (uuid.uuid4().int % 1000) / 1000)
