"""Retry policy for rate-limited and failed upstream calls (same fields as llm-client's)."""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass

from tenacity import RetryCallState

from ._errors import RateLimitError

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True, init=False)
class RetryPolicy:
    """Retries of rate-limited and failed (5xx, connection) calls.

    Attributes:
        max_attempts: Attempts in all, the first included (3).
        initial_wait: First backoff in seconds; doubles per attempt.
        max_wait: Longest backoff without a ``Retry-After``.
        jitter: Up to this many random seconds added to each backoff, so synchronised
            clients spread out.
        max_retry_after: Longest ``Retry-After`` honoured; a longer one fails at once.

    ``attempts=`` (the 0.1 name of ``max_attempts``) is still accepted, with a
    DeprecationWarning, until 0.3.
    """

    max_attempts: int
    initial_wait: float
    max_wait: float
    jitter: float
    max_retry_after: float

    def __init__(
        self,
        max_attempts: int = 3,
        initial_wait: float = 1.0,
        max_wait: float = 8.0,
        max_retry_after: float = 60.0,
        *,
        jitter: float = 0.5,
        attempts: int | None = None,
    ) -> None:
        # Positional order is 0.1's (attempts, initial_wait, max_wait, max_retry_after).
        if attempts is not None:
            warnings.warn(
                "RetryPolicy(attempts=...) is deprecated; use max_attempts=",
                DeprecationWarning,
                stacklevel=2,
            )
            max_attempts = attempts
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(initial_wait, max_wait, max_retry_after, jitter) < 0:
            raise ValueError("waits and jitter must not be negative")
        object.__setattr__(self, "max_attempts", max_attempts)
        object.__setattr__(self, "initial_wait", initial_wait)
        object.__setattr__(self, "max_wait", max_wait)
        object.__setattr__(self, "max_retry_after", max_retry_after)
        object.__setattr__(self, "jitter", jitter)

    @property
    def attempts(self) -> int:
        """Deprecated alias of ``max_attempts`` (removed in 0.3)."""
        warnings.warn(
            "RetryPolicy.attempts is deprecated; use .max_attempts", DeprecationWarning, 2
        )
        return self.max_attempts

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based) without a Retry-After."""
        base = min(self.max_wait, self.initial_wait * 2.0 ** (attempt - 1))
        return base + random.uniform(0.0, self.jitter)  # noqa: S311 - spreading, not secrecy

    def wait(self, state: RetryCallState) -> float:
        """Seconds before the next attempt: ``Retry-After`` when given, else jittered backoff."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimitError) and exc.retry_after is not None:
            return float(exc.retry_after)
        return self.backoff(state.attempt_number)
