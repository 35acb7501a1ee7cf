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
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from llm_client._completion import AttemptRecord
from llm_client._cost_sink import CostEstimate, CostRecord, CostSink
from llm_client._errors import (
    BudgetExceededError,
    ProviderError,
    ResponseFormatError,
    StructuredOutputError,
)
from llm_client._providers import Route
from llm_client._response import get_field, output_text, reply_text, usage_problem
from llm_client._retry import map_provider_error
from llm_client._usage import Usage, normalize_usage

if TYPE_CHECKING:
    from llm_client._telemetry import CallTrace

__all__ = ["AttemptRunner", "CallLedger", "Sender", "is_budget_refusal", "is_fallback_error"]

logger = logging.getLogger("llm_client")

Sender = Callable[[Route, Mapping[str, Any], float], Awaitable[Any]]
"""Sends one chat-completions request: ``(route, request kwargs, timeout) -> response``."""


@dataclass(slots=True)
class _Billed:
    """A reply that was billed but whose verdict (valid or not) is not known yet."""

    reservation: Any
    record: CostRecord
    attempt: AttemptRecord
    span: Any = None
    response_model: str | None = None


@dataclass(slots=True)
class _Opened:
    """A streamed reply that has started; it is billed when the stream ends."""

    route: Route
    reservation: Any
    attempt_id: str
    number: int
    started: float
    prompt: tuple[Any, ...]
    span: Any = None


@dataclass(slots=True)
class CallLedger:
    """Everything one call (all models, retries and re-asks) has spent so far."""

    step: str | None
    records: list[AttemptRecord] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    pending: _Billed | None = None
    opened: _Opened | None = None
    last_text: str = ""
    trace: CallTrace | None = None
    admit: Callable[[CallLedger, Decimal | None], None] | None = None
    """Called with each attempt's worst-case cost before anything is reserved or sent; raises
    to refuse it (``run_tools``' dollar cap)."""

    def next_attempt(self, model: str) -> int:
        """Number the next request for ``model`` (1-based, across retries and re-asks)."""
        self.counters[model] = self.counters.get(model, 0) + 1
        return self.counters[model]

    def previous_error(self, model: str) -> str | None:
        """The error of ``model``'s last attempt in this call (what a retry or re-ask follows)."""
        for record in reversed(self.records):
            if record.model == model:
                return record.error
        return None


def _usage_of(response: Any) -> Any:
    return get_field(response, "usage")


def _text_field(response: Any, name: str) -> str | None:
    value = get_field(response, name)
    return value if isinstance(value, str) else None


def _request_id(response: Any) -> str | None:
    return _text_field(response, "id")


def is_budget_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` or anything in its cause chain is a cost sink's budget refusal.

    The convention is structural: the exception's class sets ``is_budget_refusal = True``
    (see :mod:`llm_client._cost_sink`); no class names are compared.
    """
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if getattr(type(link), "is_budget_refusal", False) is True:
            return True
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return False


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
        from llm_client._tokens import token_upper_bound

        # An upper bound, not the exact count: it never undercounts (so a budget cannot be
        # overshot), loads no tokenizer table (tens of MB) and the real usage settles anyway.
        prompt_tokens = token_upper_bound(list(kwargs.get("messages", [])))
        tools = kwargs.get("tools")
        if tools:  # tool definitions are input tokens too
            prompt_tokens += token_upper_bound(json.dumps(tools, separators=(",", ":")))
        max_tokens = kwargs.get("max_tokens") or self._output_cap
        return CostEstimate(
            idempotency_id=attempt_id,
            provider=route.provider,
            model=route.model,
            step=step,
            amount=estimate_cost(prompt_tokens, int(max_tokens), route.price_model),
        )

    async def _reserve(
        self, route: Route, kwargs: Mapping[str, Any], step: str | None, attempt_id: str
    ) -> Any:
        """Reserve the attempt's estimate; a sink's budget refusal becomes ours."""
        if self._sink is None:
            return None
        estimate = await self._estimate(route, kwargs, step, attempt_id)
        try:
            return await self._sink.reserve(estimate)
        except BudgetExceededError:
            raise
        except Exception as exc:
            if is_budget_refusal(exc):
                raise BudgetExceededError(str(exc)) from exc
            raise

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
        it as ``opened`` until :meth:`finish_stream` bills it. A reply of unexpected shape is
        billed at once (settled as failed) and raised as :class:`ResponseFormatError`.

        Raises:
            ProviderError: The mapped failure (the reservation was released, or settled when
                a malformed reply arrived).
            BudgetExceededError: The sink refused the call (nothing was sent).
            Exception: Whatever else the sink's ``reserve`` raised.
        """
        attempt_id = uuid.uuid4().hex
        number = ledger.next_attempt(route.model)
        if ledger.admit is not None:
            bound = await self._estimate(route, kwargs, ledger.step, attempt_id)
            ledger.admit(ledger, bound.amount)
        reservation = await self._reserve(route, kwargs, ledger.step, attempt_id)
        trace = ledger.trace
        span = (
            trace.start_attempt(route, kwargs, number, ledger.previous_error(route.model))
            if trace is not None
            else None
        )
        started = time.perf_counter()
        send = self._open_stream if stream else self._send
        assert send is not None, "this runner cannot stream"
        try:
            if trace is not None:
                with trace.activate_attempt(span):
                    response = await send(route, kwargs, seconds)
            else:
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
            if isinstance(mapped, ResponseFormatError):
                # A reply arrived, so the provider may have billed it: settle, never release.
                ledger.pending = self._billed(
                    route, kwargs, None, "", reservation, attempt_id, number, ledger, latency,
                    request_id=None, estimate_reason=f"unusable reply: {mapped.reason}",
                )  # fmt: skip
                ledger.pending.span = span
                await self.settle(ledger, error=type(mapped).__name__)
                raise mapped from None
            failed = AttemptRecord(
                model=route.model,
                provider=route.provider,
                attempt=number,
                usage=Usage(),
                cost=Decimal(0),
                error=type(mapped if mapped is not None else exc).__name__,
                latency_ms=latency,
            )
            ledger.records.append(failed)
            if trace is not None:
                trace.end_attempt(span, failed, billed=False)
            if self._sink is not None:
                await self._sink.release(reservation)
            if mapped is None or mapped is exc:
                raise
            raise mapped from None
        if stream:
            prompt = tuple(kwargs.get("messages", ()))
            ledger.opened = _Opened(route, reservation, attempt_id, number, started, prompt, span)
            return response
        latency = (time.perf_counter() - started) * 1000
        logger.debug(
            "llm attempt ok: model=%s attempt=%d latency_ms=%.0f", route.model, number, latency
        )
        request_id = _request_id(response)
        try:
            text = reply_text(response, provider=route.provider, model=route.model)
        except ResponseFormatError as exc:
            ledger.pending = self._billed(
                route, kwargs, _usage_of(response), output_text(response), reservation,
                attempt_id, number, ledger, latency, request_id=request_id,
            )  # fmt: skip
            ledger.pending.span = span
            await self.settle(ledger, error=type(exc).__name__)
            raise
        ledger.pending = self._billed(
            route, kwargs, _usage_of(response), text, reservation, attempt_id, number, ledger,
            latency, request_id=request_id,
        )  # fmt: skip
        ledger.pending.span = span
        ledger.pending.response_model = _text_field(response, "model")
        ledger.last_text = text
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
            text: The reply text received (counted when no usable usage came).
            request_id: The provider's completion id, when a chunk carried one.
            error: Why the stream ended early (None when it completed).
        """
        opened, ledger.opened = ledger.opened, None
        if opened is None:
            return
        latency = (time.perf_counter() - opened.started) * 1000
        ledger.pending = self._billed(
            opened.route, {"messages": opened.prompt}, raw_usage, text, opened.reservation,
            opened.attempt_id, opened.number, ledger, latency, request_id=request_id,
            # The provider bills what it generated even when the stream is cut short.
            estimate_reason=None if raw_usage is not None else "stream ended without usage",
        )  # fmt: skip
        ledger.pending.span = opened.span
        ledger.last_text = text
        await self.settle(ledger, error=error)

    def _billed(
        self,
        route: Route,
        kwargs: Mapping[str, Any],
        raw_usage: Any,
        text: str,
        reservation: Any,
        attempt_id: str,
        number: int,
        ledger: CallLedger,
        latency: float,
        *,
        request_id: str | None,
        estimate_reason: str | None = None,
    ) -> _Billed:
        """What one billed reply cost: reported usage when usable, else counted locally."""
        from llm_client._pricing import plausible_cost

        metadata: dict[str, Any] = {"attempt": number}
        problem = estimate_reason or usage_problem(raw_usage)
        reported: Decimal | None = None
        raw_cost = None
        if problem is None:
            usage, reported = normalize_usage(raw_usage)
            raw_cost = get_field(raw_usage, "cost")
            metadata["usage_source"] = "reported"
        else:
            usage = self._counted_usage(route, kwargs, text)
            metadata["usage_source"] = "estimated"
            metadata["usage_problem"] = problem
            if estimate_reason is None:
                logger.warning(
                    "llm reply usage not usable (%s): model=%s; usage counted locally",
                    problem,
                    route.model,
                )
        cost, source, rejected = plausible_cost(usage, route.price_model, reported, raw_cost)
        if rejected is not None:
            metadata["cost_source"] = "local"
            metadata["reported_cost_rejected"] = rejected
            logger.warning(
                "llm provider-reported cost %s rejected as implausible: model=%s; "
                "recorded the local price %s instead",
                rejected,
                route.model,
                cost,
            )
        metadata.update(
            price_source=source,
            request_id=request_id,
            # Anthropic cache writes are billed at their own rate; CostRecord has no column.
            cache_write_tokens=usage.cache_write_tokens,
        )
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
            metadata=metadata,
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

    @staticmethod
    def _counted_usage(route: Route, kwargs: Mapping[str, Any], text: str) -> Usage:
        from llm_client._tokens import count_tokens

        return Usage(
            prompt_tokens=count_tokens(list(kwargs.get("messages", ())), route.price_model),
            completion_tokens=count_tokens(text, route.price_model) if text else 0,
        )

    async def settle(self, ledger: CallLedger, *, error: str | None = None) -> None:
        """Settle the pending billed reply as a success, or as failed with ``error``."""
        billed, ledger.pending = ledger.pending, None
        if billed is None:
            return
        attempt = dataclasses.replace(billed.attempt, error=error)
        ledger.records.append(attempt)
        if ledger.trace is not None:
            ledger.trace.end_attempt(
                billed.span, attempt, billed=True, response_model=billed.response_model,
                response_id=billed.record.metadata.get("request_id"),
                usage_source=billed.record.metadata.get("usage_source"), output=ledger.last_text,
            )  # fmt: skip
        if self._sink is not None:
            record = dataclasses.replace(billed.record, success=error is None, error=error)
            await self._sink.settle(billed.reservation, record)


def is_fallback_error(exc: BaseException) -> bool:
    """Whether a failure moves a fallback chain on to its next model (provider/validation)."""
    return isinstance(exc, ProviderError | StructuredOutputError)
