"""One HTTP attempt, with the cost sink around it: reserve → call → settle or release.

A reply that arrives is billed, so it is settled even when it later fails validation
(``success=False``). A failure with no reply (HTTP error, timeout, dropped connection,
cancellation) was not billed, so its reservation is released. A streamed reply is billed when
the stream ends, however it ends: with the usage the provider reported, else with usage counted
locally from the prompt and the text received (marked ``usage_source="estimated"``). Every
attempt also lands in the call's :class:`CallLedger`, which becomes ``Completion.attempts``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from llm_client._completion import AttemptRecord
from llm_client._cost_sink import CostEstimate, CostRecord, CostSink
from llm_client._errors import ProviderError, StructuredOutputError
from llm_client._providers import Route
from llm_client._retry import map_provider_error
from llm_client._usage import Usage, normalize_usage

__all__ = ["AttemptRunner", "CallLedger", "Sender", "is_fallback_error", "reply_text"]

logger = logging.getLogger("llm_client")

Sender = Callable[[Route, Mapping[str, Any], float], Awaitable[Any]]
"""Sends one chat-completions request: ``(route, request kwargs, timeout) -> response``."""


@dataclass(slots=True)
class _Billed:
    """A reply that was billed but whose verdict (valid or not) is not known yet."""

    reservation: Any
    record: CostRecord
    attempt: AttemptRecord


@dataclass(slots=True)
class _Opened:
    """A streamed reply that has started; it is billed when the stream ends."""

    route: Route
    reservation: Any
    attempt_id: str
    number: int
    started: float
    prompt: tuple[Any, ...]


@dataclass(slots=True)
class CallLedger:
    """Everything one call (all models, retries and re-asks) has spent so far."""

    step: str | None
    records: list[AttemptRecord] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    pending: _Billed | None = None
    opened: _Opened | None = None
    last_text: str = ""

    def next_attempt(self, model: str) -> int:
        """Number the next request for ``model`` (1-based, across retries and re-asks)."""
        self.counters[model] = self.counters.get(model, 0) + 1
        return self.counters[model]


def reply_text(response: Any) -> str:
    """The first choice's text content, or "" (tool-call-only replies, odd shapes)."""
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        return ""
    return content if isinstance(content, str) else ""


class AttemptRunner:
    """Runs single attempts against a cost sink and records them in a ledger."""

    def __init__(
        self,
        sink: CostSink[Any] | None,
        send: Sender,
        output_cap: int,
        open_stream: Sender | None = None,
    ) -> None:
        self._sink = sink
        self._send = send
        self._open_stream = open_stream
        self._output_cap = output_cap

    async def _estimate(
        self, route: Route, kwargs: Mapping[str, Any], step: str | None, attempt_id: str
    ) -> CostEstimate:
        from llm_client._pricing import estimate_cost
        from llm_client._tokens import count_tokens

        prompt_tokens = count_tokens(list(kwargs.get("messages", [])), route.price_model)
        max_tokens = kwargs.get("max_tokens") or self._output_cap
        return CostEstimate(
            idempotency_id=attempt_id,
            provider=route.provider,
            model=route.model,
            step=step,
            amount=estimate_cost(prompt_tokens, int(max_tokens), route.price_model),
        )

    async def attempt(
        self,
        route: Route,
        kwargs: Mapping[str, Any],
        ledger: CallLedger,
        seconds: float,
        *,
        stream: bool = False,
    ) -> Any:
        """Send one request; keep its billed reply pending in ``ledger`` and return it.

        With ``stream`` the request opens a streamed reply, returned unread; the ledger keeps
        it as ``opened`` until :meth:`finish_stream` bills it.

        Raises:
            ProviderError: The mapped failure (the reservation was released).
            Exception: Whatever the sink's ``reserve`` raised to refuse the call.
        """
        attempt_id = uuid.uuid4().hex
        number = ledger.next_attempt(route.model)
        reservation: Any = None
        if self._sink is not None:
            reservation = await self._sink.reserve(
                await self._estimate(route, kwargs, ledger.step, attempt_id)
            )
        started = time.perf_counter()
        send = self._open_stream if stream else self._send
        assert send is not None, "this runner cannot stream"
        try:
            response = await send(route, kwargs, seconds)
        except BaseException as exc:
            latency = (time.perf_counter() - started) * 1000
            mapped = (
                map_provider_error(
                    exc,
                    provider=route.provider,
                    model=route.model,
                    secrets=[route.api_key.get_secret_value()] if route.api_key else [],
                )
                if isinstance(exc, Exception)
                else None
            )
            ledger.records.append(
                AttemptRecord(
                    model=route.model,
                    provider=route.provider,
                    attempt=number,
                    usage=Usage(),
                    cost=Decimal(0),
                    error=type(mapped if mapped is not None else exc).__name__,
                    latency_ms=latency,
                )
            )
            if self._sink is not None:
                await self._sink.release(reservation)
            if mapped is None or mapped is exc:
                raise
            raise mapped from None
        if stream:
            prompt = tuple(kwargs.get("messages", ()))
            ledger.opened = _Opened(route, reservation, attempt_id, number, started, prompt)
            return response
        latency = (time.perf_counter() - started) * 1000
        logger.debug(
            "llm attempt ok: model=%s attempt=%d latency_ms=%.0f", route.model, number, latency
        )
        raw_usage = getattr(response, "usage", None)
        usage, reported = normalize_usage(raw_usage) if raw_usage is not None else (Usage(), None)
        if raw_usage is None:
            logger.warning("llm reply without usage: model=%s; counted as 0 tokens", route.model)
        ledger.pending = self._billed(
            route, usage, reported, reservation, attempt_id, number, ledger, latency,
            request_id=getattr(response, "id", None),
            usage_source="reported" if raw_usage is not None else "missing",
        )  # fmt: skip
        ledger.last_text = reply_text(response)
        return response

    async def finish_stream(
        self,
        ledger: CallLedger,
        *,
        raw_usage: Any,
        text: str,
        request_id: str | None,
        error: str | None,
    ) -> None:
        """Bill the ledger's opened stream: reported usage, else usage counted locally.

        Args:
            ledger: The call's ledger (its ``opened`` stream is billed and cleared).
            raw_usage: The ``usage`` of the stream's last chunk, or None when none came.
            text: The reply text received (counted when no usage came).
            request_id: The provider's completion id, when a chunk carried one.
            error: Why the stream ended early (None when it completed).
        """
        opened, ledger.opened = ledger.opened, None
        if opened is None:
            return
        from llm_client._tokens import count_tokens

        route = opened.route
        if raw_usage is not None:
            usage, reported = normalize_usage(raw_usage)
            source = "reported"
        else:
            # The provider bills what it generated even when the stream is cut short.
            usage = Usage(
                prompt_tokens=count_tokens(list(opened.prompt), route.price_model),
                completion_tokens=count_tokens(text, route.price_model) if text else 0,
            )
            reported, source = None, "estimated"
        latency = (time.perf_counter() - opened.started) * 1000
        ledger.pending = self._billed(
            route, usage, reported, opened.reservation, opened.attempt_id, opened.number,
            ledger, latency, request_id=request_id, usage_source=source,
        )  # fmt: skip
        ledger.last_text = text
        await self.settle(ledger, error=error)

    def _billed(
        self,
        route: Route,
        usage: Usage,
        reported: Decimal | None,
        reservation: Any,
        attempt_id: str,
        number: int,
        ledger: CallLedger,
        latency: float,
        *,
        request_id: str | None,
        usage_source: str,
    ) -> _Billed:
        from llm_client._pricing import cost_for

        cost, source = cost_for(usage, route.price_model, reported)
        record = CostRecord(
            idempotency_id=attempt_id,
            provider=route.provider,
            model=route.model,
            step=ledger.step,
            cost=cost,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_prompt_tokens=usage.cached_prompt_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            latency_ms=latency,
            metadata={
                "attempt": number,
                "price_source": source,
                "usage_source": usage_source,
                "request_id": request_id,
                # Anthropic cache writes are billed at their own rate; CostRecord has no column.
                "cache_write_tokens": usage.cache_write_tokens,
            },
        )
        attempt = AttemptRecord(
            model=route.model,
            provider=route.provider,
            attempt=number,
            usage=usage,
            cost=cost,
            error=None,
            latency_ms=latency,
            price_source=source,
        )
        return _Billed(reservation, record, attempt)

    async def settle(self, ledger: CallLedger, *, error: str | None = None) -> None:
        """Settle the pending billed reply as a success, or as failed with ``error``."""
        billed, ledger.pending = ledger.pending, None
        if billed is None:
            return
        attempt = dataclasses.replace(billed.attempt, error=error)
        ledger.records.append(attempt)
        if self._sink is not None:
            record = dataclasses.replace(billed.record, success=error is None, error=error)
            await self._sink.settle(billed.reservation, record)


def is_fallback_error(exc: BaseException) -> bool:
    """Whether a failure moves a fallback chain on to its next model (provider/validation)."""
    return isinstance(exc, ProviderError | StructuredOutputError)
