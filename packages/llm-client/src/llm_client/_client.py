"""``LLMClient``: one async call to any provider, with retries, fallbacks and exact cost."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pydantic import BaseModel, SecretStr

from llm_client._attempts import AttemptRunner, CallLedger
from llm_client._backends import Backends
from llm_client._completion import Completion
from llm_client._config import LLMConfig, config_price_rows
from llm_client._cost_sink import CostSink
from llm_client._errors import ConfigurationError, LLMClientError
from llm_client._fallback import first_success
from llm_client._messages import Messages, check_text, validate_messages
from llm_client._options import CallOptions
from llm_client._providers import Route, Router
from llm_client._retry import RetryPolicy

if TYPE_CHECKING:
    from types import TracebackType

    from llm_client._streaming import TextStream

__all__ = ["LLMClient"]

M = TypeVar("M", bound=BaseModel)
ModelSpec = Any  # a model string / alias, a TestModel, or a sequence of those (a fallback chain)


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
    """

    def __init__(
        self,
        cost_sink: CostSink[Any] | None = None,
        config: LLMConfig | None = None,
        *,
        api_keys: Mapping[str, str | SecretStr] | None = None,
        retry: RetryPolicy | None = None,
        default_timeout: float | None = None,
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
        self._closed = False

    def __repr__(self) -> str:
        sink = type(self._sink).__name__ if self._sink is not None else None
        return f"LLMClient(cost_sink={sink}, retry={self._retry!r}, timeout={self._timeout})"

    @property
    def config(self) -> LLMConfig:
        """The configuration in use."""
        return self._config

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
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - per-attempt HTTP timeout
        step: str | None = None,
        api_base: str | None = None,
        max_validation_retries: int | None = None,
    ) -> str: ...

    @overload
    async def chat(
        self,
        messages: Messages,
        model: ModelSpec,
        response_model: type[M],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - per-attempt HTTP timeout
        step: str | None = None,
        api_base: str | None = None,
        max_validation_retries: int | None = None,
    ) -> M: ...

    async def chat(
        self,
        messages: Messages,
        model: ModelSpec = None,
        response_model: type[M] | None = None,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - per-attempt HTTP timeout
        step: str | None = None,
        api_base: str | None = None,
        max_validation_retries: int | None = None,
    ) -> str | M:
        """Send ``messages``; return the reply text or a validated ``response_model``.

        Args:
            messages: OpenAI-style ``[{"role": ..., "content": ...}]`` (a string means one user
                message).
            model: Model string or alias, a ``TestModel``, or a list (a fallback chain); None
                uses the chain configured for ``step``.
            response_model: Pydantic model to fill (JSON schema sent, reply validated,
                re-asked with the validation error on failure).
            temperature: Sampling temperature (sent only when given).
            max_tokens: Output cap (sent only when given; also bounds the budget estimate).
            timeout: Seconds per HTTP attempt.
            step: Application step, for the step's model chain and cost records.
            api_base: Base URL of an OpenAI-compatible server (``openai/<name>`` models).
            max_validation_retries: Re-asks after a reply fails validation (default 2).

        Returns:
            The reply text, or the validated instance.

        Raises:
            ProviderError: The provider failed for good (single model).
            StructuredOutputError: No reply validated.
            AllModelsFailedError: Every model of a chain failed.
            BudgetExceededError: The cost sink refused the call.
        """
        options = CallOptions(
            temperature, max_tokens, timeout, step, api_base, max_validation_retries
        )
        done: Completion[str | M] = await self._complete(messages, model, response_model, options)
        return done.output

    @overload
    async def chat_with_fallback(
        self,
        messages: Messages,
        models: Sequence[Any] | None = None,
        response_model: None = None,
        **options: Any,
    ) -> str: ...

    @overload
    async def chat_with_fallback(
        self,
        messages: Messages,
        models: Sequence[Any] | None,
        response_model: type[M],
        **options: Any,
    ) -> M: ...

    async def chat_with_fallback(
        self,
        messages: Messages,
        models: Sequence[Any] | None = None,
        response_model: type[M] | None = None,
        **options: Any,
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
            messages, chain, response_model, CallOptions(**options)
        )
        return done.output

    @overload
    async def complete(
        self,
        messages: Messages,
        model: ModelSpec = None,
        response_model: None = None,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - per-attempt HTTP timeout
        step: str | None = None,
        api_base: str | None = None,
        max_validation_retries: int | None = None,
    ) -> Completion[str]: ...

    @overload
    async def complete(
        self,
        messages: Messages,
        model: ModelSpec,
        response_model: type[M],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - per-attempt HTTP timeout
        step: str | None = None,
        api_base: str | None = None,
        max_validation_retries: int | None = None,
    ) -> Completion[M]: ...

    async def complete(
        self,
        messages: Messages,
        model: ModelSpec = None,
        response_model: type[M] | None = None,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - per-attempt HTTP timeout
        step: str | None = None,
        api_base: str | None = None,
        max_validation_retries: int | None = None,
    ) -> Completion[Any]:
        """Like :meth:`chat`, returning a :class:`Completion` with usage, cost and attempts.

        A failed call raises as :meth:`chat` does; the error's ``attempt_records`` holds every
        attempt it made (``total_cost(error.attempt_records)`` is what the failure cost).
        """
        options = CallOptions(
            temperature, max_tokens, timeout, step, api_base, max_validation_retries
        )
        return await self._complete(messages, model, response_model, options)

    async def _complete(
        self,
        messages: Messages,
        model: ModelSpec,
        response_model: type[M] | None,
        options: CallOptions,
    ) -> Completion[Any]:
        if self._closed:
            raise LLMClientError("this LLMClient is closed")
        started = time.perf_counter()
        msgs = validate_messages(messages)
        chain, is_chain = self._chain(model, options.step, options.api_base)
        ledger = CallLedger(options.step)
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
                await self._retry.run(
                    lambda _n: self._runner.attempt(route, request, ledger, per_attempt),
                    model=route.model,
                )
            except BaseException as exc:
                if ledger.pending is not None:  # pragma: no cover - cancelled right after reply
                    await self._runner.settle(ledger, error=type(exc).__name__)
                raise
            await self._runner.settle(ledger)
            return ledger.last_text

        output, route = await first_success(
            chain,
            is_chain=is_chain,
            ledger=ledger,
            route_for=lambda spec: self._router.route(spec, options.api_base),
            attempt=one_model,
        )
        return Completion.from_attempts(
            output,
            model=route.model,
            provider=route.provider,
            attempts=ledger.records,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    def stream(
        self,
        messages: Messages,
        model: ModelSpec = None,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float | None = None,
        step: str | None = None,
        api_base: str | None = None,
    ) -> TextStream:
        """Stream the reply's text as it arrives (any route: the SDK's, LiteLLM's, test models).

        Example:
            >>> async with llm.stream(messages, model="openrouter/openai/gpt-4o-mini") as s:
            ...     async for delta in s:
            ...         await websocket.send_text(delta)
            >>> s.completion.cost  # billed once the stream ended, early or not

        Args:
            messages: As for :meth:`chat`.
            model: A model, alias or fallback chain, as for :meth:`chat`; a chain falls back
                only while the stream opens.
            temperature: Sampling temperature (sent only when given).
            max_tokens: Output cap (sent only when given; also bounds the budget estimate).
            timeout: Seconds per HTTP attempt, and between chunks.
            step: Application step, for the step's model chain and cost records.
            api_base: Base URL of an OpenAI-compatible server (``openai/<name>`` models).

        Returns:
            A :class:`TextStream`; entering it opens the stream (retries and fallbacks happen
            there), iterating it yields text deltas, and ``completion`` holds the usage and
            cost once it ended.

        Raises:
            InvalidMessagesError: Bad ``messages`` (before anything is sent).
        """
        from llm_client._streaming import TextStream

        if self._closed:
            raise LLMClientError("this LLMClient is closed")
        options = CallOptions(
            temperature=temperature, max_tokens=max_tokens, timeout=timeout, step=step,
            api_base=api_base,
        )  # fmt: skip
        chain, is_chain = self._chain(model, step, api_base)
        return TextStream(
            validate_messages(messages),
            chain,
            is_chain=is_chain,
            options=options,
            timeout=timeout if timeout is not None else self._timeout,
            runner=self._runner,
            retry=self._retry,
            route_for=lambda spec: self._router.route(spec, api_base),
        )

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
