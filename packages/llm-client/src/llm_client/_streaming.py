"""Streamed replies: text deltas as they arrive, billed once the stream ends however it ends.

Retries and fallbacks apply until the stream opens (HTTP errors, timeouts, refused
connections); once text has been handed out it cannot be taken back, so a failure mid-stream
raises. Whatever the provider generated is billed: with the usage of the stream's last chunk,
or, when the stream was cut short or closed early, with usage counted locally.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from llm_client._attempts import AttemptRunner, CallLedger
from llm_client._completion import Completion
from llm_client._errors import LLMClientError
from llm_client._fallback import first_success
from llm_client._litellm import provider_usage
from llm_client._options import CallOptions
from llm_client._response import chunk_text, get_field
from llm_client._retry import map_provider_error
from llm_client._telemetry import model_name

if TYPE_CHECKING:
    from types import TracebackType

    from llm_client._providers import Route
    from llm_client._retry import RetryPolicy
    from llm_client._telemetry import Telemetry

__all__ = ["TextStream"]


class TextStream:
    """A reply streamed as text; made by :meth:`LLMClient.stream`.

    Use it as an async context manager and iterate it for the text deltas. When the stream
    ends (or the block is left early), :attr:`completion` holds the text, usage, cost and
    attempts, and the cost has been settled with the client's cost sink.

    Example:
        >>> async with llm.stream("Tell me a story", model="openrouter/openai/gpt-4o-mini") as s:
        ...     async for delta in s:
        ...         print(delta, end="")
        >>> s.completion.cost
    """

    def __init__(
        self,
        messages: list[dict[str, Any]],
        chain: list[Any],
        *,
        is_chain: bool,
        options: CallOptions,
        timeout: float,
        runner: AttemptRunner,
        retry: RetryPolicy,
        route_for: Callable[[Any], Route],
        telemetry: Telemetry | None = None,
    ) -> None:
        """Prepare a stream (nothing is sent until it is opened).

        Args:
            messages: Validated messages.
            chain: Model specs to try while opening, in order.
            is_chain: Whether the caller asked for a chain.
            options: The call's options.
            timeout: Seconds per HTTP attempt, and between chunks.
            runner: Runs and bills single attempts.
            retry: Retry policy while opening.
            route_for: Turns a model spec into its route.
            telemetry: Where the stream's spans go (None: no spans).
        """
        self._messages = messages
        self._chain = chain
        self._is_chain = is_chain
        self._options = options
        self._timeout = timeout
        self._runner = runner
        self._retry = retry
        self._route_for = route_for
        self._telemetry = telemetry
        self._ledger = CallLedger(options.step)
        self._route: Route | None = None
        self._sdk_stream: Any = None
        self._opened = False
        self._deltas: AsyncIterator[str] | None = None
        self._parts: list[str] = []
        self._usage: Any = None
        self._request_id: str | None = None
        self._started = 0.0
        self._completion: Completion[Any] | None = None

    async def __aenter__(self) -> TextStream:
        return await self.open()

    async def open(self) -> TextStream:
        """Open the stream, where ``async with`` does not fit (a web framework's streaming
        response); then :meth:`aclose` it when done, as ``async with`` would.

        Raises:
            ProviderError: The stream could not be opened (retries and fallbacks used up).
            AllModelsFailedError: No model of a chain could open it.
        """
        if self._opened:
            raise LLMClientError("this stream is already open")
        self._started = time.perf_counter()
        if self._telemetry is not None:
            self._ledger.trace = self._telemetry.start_call(
                "chat", model_name(self._chain[0]), step=self._options.step,
                messages=self._messages,
            )  # fmt: skip
        try:
            await self._open()
        except BaseException as exc:
            if self._ledger.trace is not None:
                self._ledger.trace.finish(None, type(exc).__name__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[str]:
        if not self._opened:
            raise LLMClientError("use the stream as `async with llm.stream(...) as s:` first")
        if self._deltas is None:
            self._deltas = self._read()
        return self._deltas

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self._parts)

    @property
    def completion(self) -> Completion[Any]:
        """The finished reply with usage, cost and attempts (available once the stream ended).

        Raises:
            LLMClientError: The stream has not ended yet.
        """
        if self._completion is None:
            raise LLMClientError("the stream has not ended yet")
        return self._completion

    async def aclose(self) -> None:
        """Stop reading (the HTTP response is closed) and bill what was generated; idempotent."""
        if self._deltas is not None:
            await self._deltas.aclose()  # type: ignore[attr-defined]
        await self._finish(error="ClosedEarly")

    async def _open(self) -> None:
        async def open_with(route: Route) -> Any:
            request = self._options.request(route, self._messages)
            return await self._retry.run(
                lambda _n: self._runner.attempt(
                    route, request, self._ledger, self._timeout, stream=True
                ),
                model=route.model,
            )

        self._sdk_stream, self._route = await first_success(
            self._chain,
            is_chain=self._is_chain,
            ledger=self._ledger,
            route_for=self._route_for,
            attempt=open_with,
        )
        self._opened = True

    async def _read(self) -> AsyncGenerator[str, None]:
        route = self._route
        assert route is not None
        try:
            async for chunk in self._sdk_stream:
                self._request_id = self._request_id or _text_or_none(get_field(chunk, "id"))
                if get_field(chunk, "usage") is not None:
                    self._usage = provider_usage(chunk)
                piece = chunk_text(chunk, provider=route.provider, model=route.model)
                if piece:
                    self._parts.append(piece)
                    yield piece
        except Exception as exc:
            secrets = [route.api_key.get_secret_value()] if route.api_key else []
            mapped = map_provider_error(
                exc, provider=route.provider, model=route.model, secrets=secrets
            )
            failure = mapped if mapped is not None else exc
            await self._finish(error=type(failure).__name__)
            if isinstance(failure, LLMClientError):
                failure.attempt_records = tuple(self._ledger.records)
            if failure is exc:
                raise
            raise failure from None
        verdict = self._verdict()
        await self._finish(error=None if verdict is None else type(verdict).__name__)
        if verdict is not None:
            verdict.attempt_records = tuple(self._ledger.records)
            raise verdict

    def _verdict(self) -> LLMClientError | None:
        """Check the whole reply once it arrived; an error fails (and is raised by) the stream."""
        return None

    def _output(self) -> Any:
        """What ``completion.output`` holds."""
        return self.text

    async def _finish(self, *, error: str | None) -> None:
        if self._completion is not None or self._route is None:
            return
        route = self._route
        stream, self._sdk_stream = self._sdk_stream, None
        try:
            if stream is not None:
                # The openai SDK's stream closes with ``close()``, LiteLLM's with ``aclose()``.
                closing = getattr(stream, "aclose", None) or stream.close
                result = closing()
                if inspect.isawaitable(result):
                    await result
        finally:
            await self._runner.finish_stream(
                self._ledger,
                raw_usage=self._usage,
                text=self.text,
                request_id=self._request_id,
                error=error,
            )
            self._completion = Completion.from_attempts(
                self._output(),
                model=route.model,
                provider=route.provider,
                attempts=self._ledger.records,
                latency_ms=(time.perf_counter() - self._started) * 1000,
            )
            if self._ledger.trace is not None:
                self._ledger.trace.finish(self._completion, error)


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
