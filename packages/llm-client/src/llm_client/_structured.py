"""Structured output through instructor, with every HTTP attempt billed.

instructor owns the validation loop: it adds the JSON schema to the prompt, parses the reply
and, when validation fails, re-asks with the validation error appended to the conversation.
We hand it our own ``create`` function, so each request it makes goes through our retry policy
and cost sink like any other attempt.

Mode: ``JSON`` for every provider: the schema goes into the system message and the request
asks for ``response_format={"type": "json_object"}``, which z.ai, OpenAI, OpenRouter and
LiteLLM's Anthropic adapter all understand, and which needs no tool-calling support. Models
still like to wrap JSON in ```` ```json ```` fences, which instructor's JSON parser rejects, so
each reply's fenced block is unwrapped before instructor parses it (bare JSON passes as is).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from llm_client._attempts import AttemptRunner, CallLedger
from llm_client._errors import StructuredOutputError
from llm_client._providers import Route
from llm_client._retry import RetryPolicy

__all__ = ["structured_call", "unfence"]

M = TypeVar("M", bound=BaseModel)

_PARSE_ERROR_NAMES = frozenset({"AsyncValidationError", "ResponseParsingError"})
_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n?(.*?)```", re.DOTALL)


def unfence(text: str) -> str:
    """The JSON inside the last ```` ``` ```` fence of ``text``; ``text`` itself if unfenced."""
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        return text
    blocks = _FENCE.findall(text)
    return blocks[-1].strip() if blocks else text


def _unfence_reply(response: Any) -> None:
    try:
        message = response.choices[0].message
    except (AttributeError, IndexError, TypeError):
        return
    content = getattr(message, "content", None)
    if isinstance(content, str):
        unwrapped = unfence(content)
        if unwrapped is not content:
            message.content = unwrapped


def _is_parse_error(exc: BaseException | None) -> bool:
    return isinstance(exc, ValidationError | json.JSONDecodeError) or (
        exc is not None and type(exc).__name__ in _PARSE_ERROR_NAMES
    )


def _validation_errors(exc: BaseException | None) -> list[object]:
    if isinstance(exc, ValidationError):
        return list(exc.errors(include_url=False))
    return [] if exc is None else [str(exc)]


def _translate(exc: BaseException, route: Route, ledger: CallLedger) -> BaseException:
    """instructor's wrapper exceptions → the error the caller should see."""
    from instructor.core.exceptions import (
        IncompleteOutputException,
        InstructorRetryException,
    )

    if isinstance(exc, InstructorRetryException):
        cause = exc.__cause__
        if not _is_parse_error(cause):
            # A provider error or a budget refusal from our create(): surface it unchanged.
            return cause if cause is not None else exc
        tries = int(getattr(exc, "n_attempts", 0) or 0)
        return StructuredOutputError(
            f"{route.model}: reply did not match the response model after {tries} "
            f"tries: {str(cause)[:300]}",
            model=route.model,
            errors=_validation_errors(cause),
            raw_text=ledger.last_text,
            attempts=tries,
        )
    if isinstance(exc, IncompleteOutputException):
        return StructuredOutputError(
            f"{route.model}: reply was cut off (finish_reason=length); raise max_tokens",
            model=route.model,
            raw_text=ledger.last_text,
            attempts=1,
        )
    if _is_parse_error(exc):
        return StructuredOutputError(
            f"{route.model}: reply did not match the response model: {str(exc)[:300]}",
            model=route.model,
            errors=_validation_errors(exc),
            raw_text=ledger.last_text,
            attempts=1,
        )
    return exc


async def structured_call(
    *,
    runner: AttemptRunner,
    policy: RetryPolicy,
    route: Route,
    request: Mapping[str, Any],
    response_model: type[M],
    ledger: CallLedger,
    attempt_timeout: float,
    max_validation_retries: int,
) -> M:
    """Ask ``route`` for a ``response_model`` instance, re-asking on validation errors.

    Args:
        runner: Runs and bills single attempts.
        policy: Retry policy for each request instructor makes.
        route: Where to send it.
        request: Chat-completions kwargs (``model``, ``messages``, sampling options).
        response_model: The Pydantic model to fill.
        ledger: The call's attempts so far.
        attempt_timeout: Seconds per HTTP attempt.
        max_validation_retries: Re-asks after the first reply (2 means 3 tries).

    Returns:
        The validated instance.

    Raises:
        StructuredOutputError: Every reply failed validation.
        ProviderError: A request failed for good.
    """
    import instructor

    async def create(**kwargs: Any) -> Any:
        if ledger.pending is not None:
            # instructor only calls again after the previous reply failed validation.
            await runner.settle(ledger, error="ValidationError")
        response = await policy.run(
            lambda _n: runner.attempt(route, kwargs, ledger, attempt_timeout), model=route.model
        )
        _unfence_reply(response)
        return response

    patched: Any = instructor.patch(create=create, mode=instructor.Mode.JSON)
    try:
        result = await patched(
            response_model=_instructor_schema(response_model),
            max_retries=max_validation_retries,
            **request,
        )
    except BaseException as exc:
        translated = _translate(exc, route, ledger)
        if ledger.pending is not None:
            await runner.settle(ledger, error=type(translated).__name__)
        if translated is exc:
            raise
        # A surfaced error keeps its own cause (a budget refusal's original, say).
        raise translated from translated.__cause__
    await runner.settle(ledger)
    return _as_user_model(result, response_model)


@functools.lru_cache(maxsize=512)
def _instructor_schema(response_model: type[BaseModel]) -> type[BaseModel]:
    """instructor's wrapper class for ``response_model``, built once per model.

    instructor wraps the model with ``pydantic.create_model`` on every call unless it is given
    an already-wrapped class; that costs ~10 ms of CPU per structured call (bench/pipeline.py).
    """
    from instructor.v2.core.function_calls import ResponseSchema, response_schema

    if issubclass(response_model, ResponseSchema):
        return response_model
    wrapped: type[BaseModel] = response_schema(response_model)
    # instructor also regenerates the JSON schema for the system prompt on every call (~5 ms
    # for a nested model); a class never changes, so each schema is built once and copied.
    build = wrapped.model_json_schema
    schemas: dict[object, dict[str, Any]] = {}

    def model_json_schema(cls: type[BaseModel], *args: Any, **kwargs: Any) -> dict[str, Any]:
        key = (args, tuple(sorted(kwargs.items())))
        if key not in schemas:
            schemas[key] = build(*args, **kwargs)
        return copy.deepcopy(schemas[key])

    wrapped.model_json_schema = classmethod(model_json_schema)  # type: ignore[method-assign,assignment]
    return wrapped


def _as_user_model(result: Any, response_model: type[M]) -> M:
    """Rebuild instructor's result as exactly ``response_model`` (already validated).

    instructor returns an instance of a generated subclass carrying the raw response; callers
    expect their own class (``==``, ``type(x) is Model``), and the raw reply should not be kept
    alive: usage and cost live on the :class:`Completion`.
    """
    if type(result) is response_model:
        return result
    values = {name: getattr(result, name) for name in response_model.model_fields}
    values.update(getattr(result, "__pydantic_extra__", None) or {})
    clean = response_model.model_construct(_fields_set=set(result.model_fields_set), **values)
    private = getattr(result, "__pydantic_private__", None)
    if private:
        for name, value in private.items():
            if name not in {"_raw_response", "_total_usage"}:
                setattr(clean, name, value)
    return clean
