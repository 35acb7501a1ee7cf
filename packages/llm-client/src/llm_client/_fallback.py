"""The fallback loop: try each model of a chain until one succeeds (``chat``, ``stream``...).

A chain moves on to its next model on a :class:`ProviderError` or a
:class:`StructuredOutputError`; anything else (a budget refusal, a configuration error) stops
the call at once. Every error leaving the loop carries the call's ``attempt_records``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from llm_client._attempts import CallLedger, is_fallback_error
from llm_client._errors import AllModelsFailedError, LLMClientError
from llm_client._providers import Route

__all__ = ["first_success"]

logger = logging.getLogger("llm_client")

T = TypeVar("T")


async def first_success(
    chain: Sequence[Any],
    *,
    is_chain: bool,
    ledger: CallLedger,
    route_for: Callable[[Any], Route],
    attempt: Callable[[Route], Awaitable[T]],
) -> tuple[T, Route]:
    """Run ``attempt`` on each model of ``chain`` in turn; return the first result.

    Args:
        chain: Model specs, in order.
        is_chain: Whether the caller asked for a chain (a single model's error is raised as
            is, never wrapped in :class:`AllModelsFailedError`).
        ledger: The call's attempts, attached to the error that ends the call.
        route_for: Turns a model spec into its route.
        attempt: Everything one model gets (retries and re-asks included).

    Returns:
        ``(result, route)`` of the model that succeeded.

    Raises:
        AllModelsFailedError: Every model of a chain failed.
        LLMClientError: A single model failed, or a failure that stops a chain.
    """
    failures: list[tuple[str, BaseException]] = []
    for spec in chain:
        route = route_for(spec)
        try:
            return await attempt(route), route
        except LLMClientError as exc:
            if not is_chain or not is_fallback_error(exc):
                exc.attempt_records = tuple(ledger.records)
                raise
            failures.append((route.model, exc))
            if ledger.trace is not None:
                ledger.trace.fallback(route.model, exc)
            logger.warning(
                "llm model failed, falling back: model=%s error=%s",
                route.model,
                type(exc).__name__,
            )
    error = AllModelsFailedError(failures)
    error.attempt_records = tuple(ledger.records)
    raise error
