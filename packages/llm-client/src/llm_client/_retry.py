"""Retries: the one place that decides whether, and when, a failed attempt is tried again.

At most ``max_attempts`` (3) attempts per model, exponential backoff 1 s, 2 s, 4 s (plus up to
``jitter`` seconds of random jitter), a ``Retry-After`` header overriding the schedule. Only
rate limits (429), server errors (5xx), timeouts and connection failures are retried; auth
errors, other 4xx and z.ai's insufficient-balance 429 (code 1113) fail at once. The openai SDK's
and LiteLLM's own retries are switched off so attempts never multiply.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import re
import time
import warnings
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from llm_client._errors import (
    AuthenticationError,
    BadRequestError,
    LLMClientError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    QuotaExhaustedError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)

__all__ = ["RetryPolicy", "map_provider_error", "parse_retry_after", "redact"]

logger = logging.getLogger("llm_client")

T = TypeVar("T")

_KEY_PATTERN = re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_\-*]{6,}|\bBearer\s+\S+", re.IGNORECASE)
_MAX_MESSAGE = 300


@dataclass(frozen=True, slots=True, init=False)
class RetryPolicy:
    """How often and how patiently a model is retried.

    The same fields as web-search's ``RetryPolicy`` (one vocabulary across llm-common).

    Attributes:
        max_attempts: Attempts per model, the first included (3).
        initial_wait: First backoff in seconds; it doubles each time (1 s, 2 s, 4 s).
        max_wait: Longest backoff (without a ``Retry-After``).
        jitter: Up to this many random seconds added to each backoff.
        max_retry_after: Longest ``Retry-After`` honoured; a rate limit asking for longer
            fails at once instead of holding the caller.
        sleep: The coroutine that waits (inject a fast one in tests).
    """

    max_attempts: int
    initial_wait: float
    max_wait: float
    jitter: float
    max_retry_after: float
    sleep: Callable[[float], Awaitable[None]] = field(repr=False, compare=False)

    def __init__(
        self,
        max_attempts: int = 3,
        initial_wait: float = 1.0,
        max_wait: float = 60.0,
        jitter: float = 0.5,
        max_retry_after: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        *,
        base: float | None = None,
    ) -> None:
        """Build a policy.

        Args:
            max_attempts: Attempts per model, the first included.
            initial_wait: First backoff in seconds.
            max_wait: Longest backoff.
            jitter: Most random seconds added to a backoff.
            max_retry_after: Longest ``Retry-After`` honoured.
            sleep: The coroutine that waits.
            base: Deprecated name of ``initial_wait`` (0.2.0; removed in 0.3.0).

        Raises:
            ValueError: A count below 1 or a negative duration.
        """
        if base is not None:
            warnings.warn(
                "RetryPolicy(base=...) is deprecated; use initial_wait=...",
                DeprecationWarning,
                stacklevel=2,
            )
            initial_wait = base
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if min(initial_wait, max_wait, jitter, max_retry_after) < 0:
            raise ValueError("initial_wait, max_wait, jitter and max_retry_after must be >= 0")
        for name, value in (
            ("max_attempts", max_attempts),
            ("initial_wait", initial_wait),
            ("max_wait", max_wait),
            ("jitter", jitter),
            ("max_retry_after", max_retry_after),
            ("sleep", sleep),
        ):
            object.__setattr__(self, name, value)

    @property
    def base(self) -> float:
        """Deprecated name of :attr:`initial_wait`."""
        warnings.warn(
            "RetryPolicy.base is deprecated; use initial_wait", DeprecationWarning, stacklevel=2
        )
        return self.initial_wait

    def wait_for(self, attempt: int, error: BaseException | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        A rate limit carrying ``retry_after`` waits exactly that long (see
        :meth:`should_retry` for one asking too much); anything else follows
        ``initial_wait * 2**(attempt-1)``, at most ``max_wait``, plus jitter.
        """
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            return max(error.retry_after, 0.0)
        backoff = wait_exponential_jitter(
            multiplier=self.initial_wait, max=self.max_wait, exp_base=2, jitter=self.jitter
        )
        state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = attempt
        return float(backoff(state))

    def should_retry(self, error: BaseException) -> bool:
        """Whether a failed attempt may be tried again (attempts left aside).

        Retryable provider errors are; a rate limit whose ``Retry-After`` exceeds
        ``max_retry_after`` is not (waiting that long would hold the caller).
        """
        if not (isinstance(error, ProviderError) and error.retryable):
            return False
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            return error.retry_after <= self.max_retry_after
        return True

    def _tenacity_wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return self.wait_for(state.attempt_number, error)

    async def run(
        self,
        attempt_fn: Callable[[int], Awaitable[T]],
        *,
        model: str,
    ) -> T:
        """Run ``attempt_fn(attempt_number)`` until it succeeds or a retry is not allowed.

        Args:
            attempt_fn: One attempt; raises a mapped :class:`ProviderError` on failure.
            model: Model name for the attempt log.

        Returns:
            The first successful result.

        Raises:
            ProviderError: The last error when attempts are exhausted or not retryable.
        """

        def log_retry(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            wait = state.next_action.sleep if state.next_action is not None else 0.0
            logger.warning(
                "llm attempt failed: model=%s attempt=%d/%d error=%s retry_in=%.2fs",
                model,
                state.attempt_number,
                self.max_attempts,
                type(error).__name__,
                wait,
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._tenacity_wait,
            retry=retry_if_exception(self.should_retry),
            sleep=self.sleep,
            before_sleep=log_retry,
            reraise=True,
        )
        attempt_number = 0
        try:
            async for attempt in retrying:
                with attempt:
                    attempt_number = attempt.retry_state.attempt_number
                    return await attempt_fn(attempt_number)
        except LLMClientError as exc:
            logger.warning(
                "llm attempt failed: model=%s attempt=%d/%d error=%s retry_in=none",
                model,
                attempt_number,
                self.max_attempts,
                type(exc).__name__,
            )
            raise
        raise AssertionError("unreachable: tenacity either returns or reraises")  # pragma: no cover


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date) or ``retry-after-ms``."""
    if headers is None:
        return None
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            return max(float(millis) / 1000.0, 0.0)
        value = headers.get("retry-after")
    except (AttributeError, TypeError, ValueError):
        return None
    if value is None:
        return None
    value = str(value).strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove known secrets and anything key-shaped from ``text``; cut it short."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _KEY_PATTERN.sub("***", text)
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "..."


def _body_error(exc: BaseException) -> tuple[str | None, str | None]:
    """``(code, message)`` from an OpenAI-style error body, if any."""
    body = getattr(exc, "body", None)
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body)
        except ValueError:
            body = None
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            code, message = err.get("code"), err.get("message")
            return (None if code is None else str(code)), (
                None if message is None else str(message)
            )
        if isinstance(err, str):
            return None, err
    return None, None


def _quota_codes() -> frozenset[str]:
    """Out-of-credit error codes every provider module declares (``ProviderSpec.quota_codes``).

    All of them, whatever the route: the same API is often reached through a proxy, LiteLLM
    or an ``openai/`` model with ``api_base``, and these codes mean nothing else.
    """
    from llm_client._providers import providers

    return frozenset().union(*(p.quota_codes for p in providers()))


def _quota_code_in(text: str, codes: frozenset[str]) -> bool:
    if not codes:
        return False
    alternatives = "|".join(re.escape(code) for code in sorted(codes))
    pattern = rf"""["']?code["']?\s*[:=]\s*["']?(?:{alternatives})\b"""
    return re.search(pattern, text) is not None


def _exception_chain(exc: BaseException, limit: int = 6) -> list[BaseException]:
    chain: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and len(chain) < limit and link not in chain:
        chain.append(link)
        link = link.__cause__ or link.__context__
    return chain


def _lineage(exc: BaseException) -> set[str]:
    # By class name along the MRO: LiteLLM's exceptions subclass the openai SDK's, and naming
    # them avoids importing either SDK here.
    return {cls.__name__ for cls in type(exc).__mro__}


def _is_dropped_connection(exc: BaseException) -> bool:
    # httpx-aiohttp (the SDK's aiohttp transport) re-raises every aiohttp connection error,
    # a reset or a server hanging up included, as httpx.ConnectTimeout: the aiohttp original,
    # kept as the cause, tells a dropped connection from a real timeout.
    lineage = _lineage(exc)
    return "ClientConnectionError" in lineage and "TimeoutError" not in lineage


def _is_timeout(exc: BaseException) -> bool:
    import httpx

    return isinstance(exc, httpx.TimeoutException | asyncio.TimeoutError) or (
        "APITimeoutError" in _lineage(exc)
    )


def _is_connection_error(exc: BaseException) -> bool:
    import httpx

    lineage = _lineage(exc)
    return isinstance(exc, httpx.TransportError) or (
        "APIConnectionError" in lineage and "APIStatusError" not in lineage
    )


def map_provider_error(
    exc: BaseException, *, provider: str, model: str, secrets: Iterable[str] = ()
) -> LLMClientError | None:
    """Translate an openai SDK / LiteLLM / httpx exception into llm-client's tree.

    Returns None for exceptions that are not provider failures (bugs, cancellations).
    """
    if isinstance(exc, LLMClientError):
        return exc

    secrets = list(secrets)
    kind = type(exc).__name__
    ctx: dict[str, Any] = {"provider": provider, "model": model}
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None) if response is not None else None
    # Along the exception chain too: LiteLLM re-raises a dropped connection or a timeout as a
    # synthetic "500 InternalServerError" whose context is the real error.
    chain = _exception_chain(exc)
    if any(_is_dropped_connection(link) for link in chain):
        return ProviderConnectionError(f"{provider} {model}: connection failed ({kind})", **ctx)
    if any(_is_timeout(link) for link in chain):
        return ProviderTimeoutError(f"{provider} {model}: timed out", **ctx)
    if any(_is_connection_error(link) for link in chain):
        return ProviderConnectionError(f"{provider} {model}: connection failed ({kind})", **ctx)
    from llm_client._response import is_malformed_reply

    malformed = [link for link in chain if is_malformed_reply(link)]
    if malformed:
        # A reply arrived (and may have been billed) but could not be parsed.
        first_line = str(malformed[-1]).split("\n", 1)[0].split("Traceback", 1)[0].strip()
        reason = redact(first_line, secrets)[:120]
        return ResponseFormatError(
            f"{provider} {model}: unusable reply ({kind}): {reason}", reason=reason, **ctx
        )
    if not isinstance(status, int):
        return None
    code, body_message = _body_error(exc)
    detail = redact(body_message or str(exc), secrets)
    message = f"{provider} {model}: HTTP {status}: {detail}"
    quota = _quota_codes()
    if code in quota or (code is None and _quota_code_in(str(exc), quota)) or status == 402:
        return QuotaExhaustedError(message, status_code=status, **ctx)
    if status == 429:
        headers = getattr(getattr(exc, "response", None), "headers", None)
        return RateLimitError(message, retry_after=parse_retry_after(headers), **ctx)
    if status >= 500:
        return ServerError(message, status_code=status, **ctx)
    if status in (401, 403):
        return AuthenticationError(message, status_code=status, **ctx)
    if status == 408:
        return ProviderTimeoutError(message, status_code=status, **ctx)
    return BadRequestError(message, status_code=status, **ctx)
