"""``LLMClient``: one async call to any provider, with retries, fallbacks and exact cost."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar, Unpack, overload

from pydantic import BaseModel, SecretStr

from llm_client._attempts import AttemptRunner, CallLedger
from llm_client._backends import Backends
from llm_client._completion import Completion
from llm_client._config import LLMConfig, config_price_rows
from llm_client._cost_sink import CostSink
from llm_client._errors import ConfigurationError, InvalidRequestError, LLMClientError
from llm_client._fallback import first_success
from llm_client._messages import Messages, check_text, validate_messages
from llm_client._options import CallOptions, CallParams, StreamParams
from llm_client._providers import Route, Router
from llm_client._retry import RetryPolicy
from llm_client._telemetry import Telemetry, model_name, otel_installed

if TYPE_CHECKING:
    from types import TracebackType

    from llm_client._streaming import TextStream
    from llm_client._structured_stream import StructuredStream
    from llm_client._tool_loop import ToolRun
    from llm_client._tools import ToolReply, ToolSpec

__all__ = ["LLMClient"]

M = TypeVar("M", bound=BaseModel)
ModelSpec = Any  # a model string / alias, a TestModel, or a sequence of those (a fallback chain)


def _call_options(tools: Sequence[ToolSpec] | None, options: Mapping[str, Any]) -> CallOptions:
    from llm_client._tools import as_tools

    return CallOptions(**options, tools=as_tools(tools))


class LLMClient:
    """Async client for chat completions on any provider.

    Example:
        >>> async with LLMClient() as llm:
        ...     text = await llm.chat([{"role": "user", "content": "hi"}], model="test")

    Args:
        cost_sink: Reserves/settles money around every HTTP attempt (a budget, a tracker).
        config: Aliases, step chains, URLs and keys; defaults to ``LLMConfig.load()``.
        api_keys: Keys by provider (``openrouter``, ``zai``, ``openai``, ``anthropic``);
            they win over the environment and are never printed.
        retry: Retry policy (3 attempts, 1 s/2 s/4 s backoff with jitter by default).
        default_timeout: Seconds per HTTP attempt; defaults to the config's (60 s).
        telemetry: Where OpenTelemetry spans go (a span per call and per attempt); None: the
            global tracer provider when ``opentelemetry-api`` is installed (the ``[otel]``
            extra), else nothing. ``Telemetry.off()`` turns spans off.
    """

    def __init__(
        self,
        cost_sink: CostSink[Any] | None = None,
        config: LLMConfig | None = None,
        *,
        api_keys: Mapping[str, str | SecretStr] | None = None,
        retry: RetryPolicy | None = None,
        default_timeout: float | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._config = config if config is not None else LLMConfig.load()
        if self._config.prices:
            from llm_client._pricing import use_config_prices

            use_config_prices(config_price_rows(self._config))
        self._keys: dict[str, SecretStr] = {
            name: value if isinstance(value, SecretStr) else SecretStr(value)
            for name, value in (api_keys or {}).items()
        }
        self._sink = cost_sink
        self._retry = retry if retry is not None else RetryPolicy()
        self._timeout = (
            default_timeout if default_timeout is not None else self._config.default_timeout
        )
        if self._timeout <= 0:
            raise ConfigurationError("default_timeout must be > 0")
        self._backends = Backends(self._timeout, self._config.base_url("openai") or "")
        self._runner = AttemptRunner(
            cost_sink,
            self._backends.send,
            self._config.default_output_cap,
            open_stream=self._backends.open_stream,
        )
        self._router = Router(self._config, self._keys)
        tracing = telemetry if telemetry is not None else Telemetry()
        self._telemetry = tracing if tracing.enabled and otel_installed() else None
        self._closed = False

    def __repr__(self) -> str:
        sink = type(self._sink).__name__ if self._sink is not None else None
        return f"LLMClient(cost_sink={sink}, retry={self._retry!r}, timeout={self._timeout})"

    @property
    def config(self) -> LLMConfig:
        """The configuration in use."""
        return self._config

    @property
    def telemetry(self) -> Telemetry:
        """Where this client's spans go (other llm-common packages take their tracers here)."""
        return self._telemetry if self._telemetry is not None else Telemetry.off()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection this client opened (LiteLLM's per-loop clients included)."""
        if self._closed:
            return
        self._closed = True
        await self._backends.aclose()

    def model_for_step(self, step: str) -> list[str]:
        """The configured model chain for ``step`` (aliases resolved).

        Raises:
            ConfigurationError: If the step has no models configured.
        """
        return self._config.models_for_step(step)

    @overload
    async def chat(
        self,
        messages: Messages,
        model: ModelSpec = None,
        response_model: None = None,
        *,
        tools: None = None,
        **options: Unpack[CallParams],
    ) -> str: ...

    @overload
    async def chat(
        self,
        messages: Messages,
        model: ModelSpec,
        response_model: type[M],
        *,
        tools: None = None,
        **options: Unpack[CallParams],
    ) -> M: ...

    @overload
    async def chat(
        self,
        messages: Messages,
        model: ModelSpec = None,
        response_model: None = None,
        *,
        tools: Sequence[ToolSpec],
        **options: Unpack[CallParams],
    ) -> ToolReply: ...

    async def chat(
        self,
        messages: Messages,
        model: ModelSpec = None,
        response_model: type[M] | None = None,
        *,
        tools: Sequence[ToolSpec] | None = None,
        **options: Unpack[CallParams],
    ) -> str | M | ToolReply:
        """Send ``messages``; return the reply text, a validated ``response_model``, or tool calls.

        Args:
            messages: OpenAI-style ``[{"role": ..., "content": ...}]`` (a string means one user
                message).
            model: Model string or alias, a ``TestModel``, or a list (a fallback chain); None
                uses the chain configured for ``step``.
            response_model: Pydantic model to fill (JSON schema sent, reply validated,
                re-asked with the validation error on failure).
            tools: Functions (sync or async), Pydantic model classes or :class:`Tool` objects
                the model may call; the call then returns a :class:`ToolReply`.
            **options: Keyword options, each sent only when given (see :class:`CallParams`):
                ``temperature``, ``max_tokens`` (also bounds the budget estimate),
                ``timeout`` (seconds per HTTP attempt), ``step`` (the step's model chain and
                cost records), ``api_base`` (an OpenAI-compatible server for ``openai/<name>``),
                ``max_validation_retries`` (default 2), ``tool_choice`` (``"auto"``,
                ``"none"``, ``"required"`` or one tool), ``parallel_tool_calls``, ``top_p``,
                ``seed``, ``stop``, ``presence_penalty``, ``frequency_penalty``,
                ``reasoning_effort`` and ``extra_body`` (provider fields, sent unchanged).

        Returns:
            The reply text, the validated instance, or (with ``tools``) a :class:`ToolReply`.

        Raises:
            ProviderError: The provider failed for good (single model).
            StructuredOutputError: No reply validated.
            AllModelsFailedError: Every model of a chain failed.
            BudgetExceededError: The cost sink refused the call.
            InvalidRequestError: A bad option or tool (before anything is sent).
        """
        done: Completion[str | M | ToolReply] = await self._complete(
            messages, model, response_model, _call_options(tools, options)
        )
        return done.output

    @overload
    async def chat_with_fallback(
        self,
        messages: Messages,
        models: Sequence[Any] | None = None,
        response_model: None = None,
        **options: Unpack[CallParams],
    ) -> str: ...

    @overload
    async def chat_with_fallback(
        self,
        messages: Messages,
        models: Sequence[Any] | None,
        response_model: type[M],
        **options: Unpack[CallParams],
    ) -> M: ...

    async def chat_with_fallback(
        self,
        messages: Messages,
        models: Sequence[Any] | None = None,
        response_model: type[M] | None = None,
        **options: Unpack[CallParams],
    ) -> str | M:
        """Like :meth:`chat`, trying each of ``models`` in order until one succeeds.

        ``models=None`` uses the chain configured for ``options["step"]``.

        Raises:
            AllModelsFailedError: Every model failed; ``.attempts`` has each one's error.
        """
        chain = list(models) if models is not None else None
        if chain is not None and not chain:
            raise ConfigurationError("chat_with_fallback needs at least one model")
        done: Completion[str | M] = await self._complete(
            messages, chain, response_model, _call_options(None, options)
        )
        return done.output

    @overload
    async def complete(
        self,
        messages: Messages,
        model: ModelSpec = None,
        response_model: None = None,
        *,
        tools: None = None,
        **options: Unpack[CallParams],
    ) -> Completion[str]: ...

    @overload
    async def complete(
        self,
        messages: Messages,
        model: ModelSpec,
        response_model: type[M],
        *,
        tools: None = None,
        **options: Unpack[CallParams],
    ) -> Completion[M]: ...

    @overload
    async def complete(
        self,
        messages: Messages,
        model: ModelSpec = None,
        response_model: None = None,
        *,
        tools: Sequence[ToolSpec],
        **options: Unpack[CallParams],
    ) -> Completion[ToolReply]: ...

    async def complete(
        self,
        messages: Messages,
        model: ModelSpec = None,
        response_model: type[M] | None = None,
        *,
        tools: Sequence[ToolSpec] | None = None,
        **options: Unpack[CallParams],
    ) -> Completion[Any]:
        """Like :meth:`chat`, returning a :class:`Completion` with usage, cost and attempts.

        A failed call raises as :meth:`chat` does; the error's ``attempt_records`` holds every
        attempt it made (``total_cost(error.attempt_records)`` is what the failure cost).
        """
        return await self._complete(messages, model, response_model, _call_options(tools, options))

    async def run_tools(
        self,
        messages: Messages,
        model: ModelSpec = None,
        *,
        tools: Sequence[ToolSpec],
        max_rounds: int = 8,
        max_cost: Decimal | None = None,
        **options: Unpack[CallParams],
    ) -> ToolRun:
        """Let the model call ``tools`` until it answers: a bounded loop of :meth:`complete`.

        Each round calls the model (billed and ledgered like any call); the tools it asks for
        run concurrently, their results (or ``{"error": ...}`` when a tool raises, its
        arguments do not validate or it does not exist) are fed back, and the next round
        begins. ``tool_choice`` applies to the first round only, so a forced tool cannot loop.

        Args:
            messages: The conversation so far.
            model: As for :meth:`chat`.
            tools: Functions (sync or async) or :class:`Tool` objects with functions.
            max_rounds: Model calls at most; the model still asking for tools after the last
                one raises :class:`ToolLoopLimitError` (its tools are not run).
            max_cost: Dollars the loop may spend: an attempt whose worst case (the estimate a
                cost sink reserves) does not fit in what is left is not sent (a model without a
                known price cannot be capped and is refused).
            **options: As for :meth:`chat`.

        Returns:
            A :class:`ToolRun`: the final text, the whole conversation, every round's completion.

        Raises:
            ToolLoopLimitError: The round or dollar cap was reached first.
            LLMClientError: A round failed (its ``attempt_records`` cover every round).
        """
        from llm_client._tool_loop import run_tool_loop

        return await run_tool_loop(
            lambda history, opts, admit: self._complete(history, model, None, opts, admit=admit),
            validate_messages(messages),
            _call_options(tools, options),
            max_rounds=max_rounds,
            max_cost=max_cost,
            telemetry=self._telemetry,
        )

    async def _complete(
        self,
        messages: Messages,
        model: ModelSpec,
        response_model: type[M] | None,
        options: CallOptions,
        *,
        admit: Callable[[CallLedger, Decimal | None], None] | None = None,
    ) -> Completion[Any]:
        if self._closed:
            raise LLMClientError("this LLMClient is closed")
        if response_model is not None and options.tools:
            raise InvalidRequestError("pass tools or a response_model, not both")
        started = time.perf_counter()
        msgs = validate_messages(messages)
        chain, is_chain = self._chain(model, options.step, options.api_base)
        ledger = CallLedger(options.step, admit=admit)
        if self._telemetry is not None:
            ledger.trace = self._telemetry.start_call(
                "chat", model_name(chain[0]), step=options.step, messages=msgs
            )
        per_attempt = options.timeout if options.timeout is not None else self._timeout
        reasks = (
            options.max_validation_retries
            if options.max_validation_retries is not None
            else self._config.max_validation_retries
        )

        async def one_model(route: Route) -> Any:
            request = options.request(route, msgs)
            if response_model is not None:
                from llm_client._structured import structured_call

                return await structured_call(
                    runner=self._runner,
                    policy=self._retry,
                    route=route,
                    request=request,
                    response_model=response_model,
                    ledger=ledger,
                    attempt_timeout=per_attempt,
                    max_validation_retries=reasks,
                )
            try:
                response = await self._retry.run(
                    lambda _n: self._runner.attempt(route, request, ledger, per_attempt),
                    model=route.model,
                )
            except BaseException as exc:
                if ledger.pending is not None:  # pragma: no cover - cancelled right after reply
                    await self._runner.settle(ledger, error=type(exc).__name__)
                raise
            await self._runner.settle(ledger)
            if options.tools:
                from llm_client._tools import tool_reply

                return tool_reply(response, ledger.last_text, options.tools)
            return ledger.last_text

        trace = ledger.trace
        try:
            with trace.activate() if trace is not None else contextlib.nullcontext():
                output, route = await first_success(
                    chain,
                    is_chain=is_chain,
                    ledger=ledger,
                    route_for=lambda spec: self._router.route(spec, options.api_base),
                    attempt=one_model,
                )
        except BaseException as exc:
            if trace is not None:
                trace.finish(None, type(exc).__name__)
            raise
        done = Completion.from_attempts(
            output,
            model=route.model,
            provider=route.provider,
            attempts=ledger.records,
            latency_ms=(time.perf_counter() - started) * 1000,
        )
        if trace is not None:
            trace.finish(done, None)
        return done

    @overload
    def stream(
        self,
        messages: Messages,
        model: ModelSpec = None,
        response_model: None = None,
        **options: Unpack[StreamParams],
    ) -> TextStream: ...

    @overload
    def stream(
        self,
        messages: Messages,
        model: ModelSpec,
        response_model: type[M],
        **options: Unpack[StreamParams],
    ) -> StructuredStream[M]: ...

    def stream(
        self,
        messages: Messages,
        model: ModelSpec = None,
        response_model: type[M] | None = None,
        **options: Unpack[StreamParams],
    ) -> TextStream | StructuredStream[M]:
        """Stream the reply as it arrives (any route: the SDK's, LiteLLM's, test models).

        Example:
            >>> async with llm.stream(messages, model="openrouter/openai/gpt-4o-mini") as s:
            ...     async for delta in s:
            ...         await websocket.send_text(delta)
            >>> s.completion.cost  # billed once the stream ended, early or not

        Args:
            messages: As for :meth:`chat`.
            model: A model, alias or fallback chain, as for :meth:`chat`; a chain falls back
                only while the stream opens.
            response_model: Stream validated partial objects of this Pydantic model instead of
                text (a :class:`StructuredStream`; its ``output`` is the validated whole).
            **options: As for :meth:`chat` (no ``max_validation_retries`` or tools);
                ``timeout`` also bounds the wait between chunks.

        Returns:
            A :class:`TextStream` (or :class:`StructuredStream`); entering it opens the stream
            (retries and fallbacks happen there), iterating it yields text deltas (partial
            objects), and ``completion`` holds the usage and cost once it ended.

        Raises:
            InvalidMessagesError: Bad ``messages`` (before anything is sent).
            InvalidRequestError: A bad parameter (before anything is sent).
        """
        from llm_client._streaming import TextStream

        if self._closed:
            raise LLMClientError("this LLMClient is closed")
        msgs = validate_messages(messages)
        call = CallOptions(**options)
        chain, is_chain = self._chain(model, call.step, call.api_base)
        route_for = functools.partial(self._router.route, api_base=call.api_base)
        common: dict[str, Any] = {
            "is_chain": is_chain,
            "timeout": call.timeout if call.timeout is not None else self._timeout,
            "runner": self._runner,
            "retry": self._retry,
            "route_for": route_for,
            "telemetry": self._telemetry,
        }
        if response_model is None:
            return TextStream(msgs, chain, options=call, **common)
        from llm_client._structured_stream import StructuredStream, json_mode_messages

        json_options = dataclasses.replace(call, response_format={"type": "json_object"})
        return StructuredStream(
            json_mode_messages(msgs, response_model), chain, options=json_options,
            response_model=response_model, **common,
        )  # fmt: skip

    def _chain(
        self, model: ModelSpec, step: str | None, api_base: str | None
    ) -> tuple[list[Any], bool]:
        check_text(step, "step")
        check_text(api_base, "api_base")
        chain, is_chain = self._chain_of(model, step)
        for index, spec in enumerate(chain):
            check_text(spec, f"model[{index}]" if is_chain else "model")
        return chain, is_chain

    def _chain_of(self, model: ModelSpec, step: str | None) -> tuple[list[Any], bool]:
        if model is None:
            if step is None:
                raise ConfigurationError("pass a model (or a step with configured models)")
            return list(self._config.models_for_step(step)), True
        if isinstance(model, str) or not isinstance(model, Sequence):
            return [model], False
        if not model:
            raise ConfigurationError("the model list is empty")
        return list(model), True
