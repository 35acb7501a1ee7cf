"""Streamed structured output: validated partial objects as the JSON arrives, then the whole.

The request is JSON mode as for ``chat(response_model=...)`` (the schema in a system message,
``response_format={"type": "json_object"}``). Each delta re-parses the JSON received so far
with pydantic-core's partial parser (an unfinished string is kept, an unfinished key or value
dropped) and validates it against a *partial* twin of the model, in which every field is
optional; a partial object is yielded whenever it changed. When the stream ends, the whole
text is validated against the model itself: ``completion.output`` is that instance, or the
stream raises :class:`StructuredOutputError` (billed as a failed attempt: a stream cannot be
re-asked). Billing is the text stream's, however the stream ends.
"""

from __future__ import annotations

import functools
import json
import types
import typing
from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar, Union

from pydantic import BaseModel, ValidationError, create_model
from pydantic_core import from_json

from llm_client._errors import LLMClientError, StructuredOutputError
from llm_client._streaming import TextStream
from llm_client._structured import unfence

__all__ = ["StructuredStream", "json_mode_messages", "partial_model"]

M = TypeVar("M", bound=BaseModel)

_INSTRUCTION = (
    "Answer with one JSON object, and nothing else, that validates against this JSON schema:\n"
)


def json_mode_messages(
    messages: list[dict[str, Any]], response_model: type[BaseModel]
) -> list[dict[str, Any]]:
    """``messages`` with the model's JSON schema as a leading system message."""
    schema = json.dumps(response_model.model_json_schema(), ensure_ascii=False)
    return [{"role": "system", "content": _INSTRUCTION + schema}, *messages]


def _partial_type(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return partial_model(annotation)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        return Union[tuple(_partial_type(arg) for arg in args)]  # noqa: UP007 - built at runtime
    if origin in (list, set, frozenset, tuple) and args:
        if origin is tuple:
            return list[Any] if args[-1] is not Ellipsis else list[_partial_type(args[0])]  # type: ignore[misc]
        return list[_partial_type(args[0])]  # type: ignore[misc]
    if origin is dict and len(args) == 2:
        return dict[args[0], _partial_type(args[1])]  # type: ignore[misc,valid-type]
    return annotation


@functools.cache
def partial_model(model: type[BaseModel]) -> type[BaseModel]:
    """A twin of ``model`` whose fields (nested models' too) are all optional, default None."""
    fields: dict[str, Any] = {
        name: (_partial_type(info.annotation) | None, None)
        for name, info in model.model_fields.items()
    }
    partial: type[BaseModel] = create_model(f"Partial{model.__name__}", **fields)
    return partial


class StructuredStream(TextStream, Generic[M]):
    """A structured reply streamed as validated partial objects; made by ``llm.stream(...,
    response_model=M)``.

    Iterating yields instances of ``partial_model(M)`` (fields not received yet are None);
    :attr:`output` is the validated ``M`` once the stream ended.

    Example:
        >>> async with llm.stream(messages, model="...", response_model=Plan) as s:
        ...     async for partial in s:
        ...         render(partial)
        >>> plan = s.output
    """

    def __init__(self, *args: Any, response_model: type[M], **kwargs: Any) -> None:
        """Prepare the stream; the arguments are :class:`TextStream`'s plus ``response_model``."""
        super().__init__(*args, **kwargs)
        self._response_model = response_model
        self._partial_type = partial_model(response_model)
        self._instance: M | None = None

    def __aiter__(self) -> AsyncIterator[Any]:
        if not self._opened:
            raise LLMClientError("use the stream as `async with llm.stream(...) as s:` first")
        if self._deltas is None:
            self._deltas = self._partials()
        return self._deltas

    @property
    def output(self) -> M:
        """The validated instance (once the stream ended).

        Raises:
            LLMClientError: The stream has not ended, or ended without a valid object.
        """
        if self._instance is None:
            raise LLMClientError("the stream has not produced a validated object")
        return self._instance

    @property
    def partial(self) -> BaseModel | None:
        """The partial object parsed from what arrived so far (None before any field)."""
        return self._parse_partial()

    async def _partials(self) -> AsyncIterator[Any]:
        last: dict[str, Any] | None = None
        reader = self._read()
        try:
            async for _delta in reader:
                partial = self._parse_partial()
                if partial is None:
                    continue
                dumped = partial.model_dump()
                if dumped != last:
                    last = dumped
                    yield partial
        finally:
            await reader.aclose()

    def _parse_partial(self) -> BaseModel | None:
        text = unfence(self.text).strip()
        if not text.startswith("{"):
            return None
        try:
            data = from_json(text, allow_partial="trailing-strings")
            return self._partial_type.model_validate(data)
        except (ValueError, ValidationError):
            return None

    def _verdict(self) -> LLMClientError | None:
        route = self._route
        model = route.model if route is not None else ""
        try:
            self._instance = self._response_model.model_validate_json(unfence(self.text))
        except ValidationError as exc:
            return StructuredOutputError(
                f"{model}: streamed reply did not match the response model: {str(exc)[:300]}",
                model=model,
                errors=list(exc.errors(include_url=False)),
                raw_text=self.text,
                attempts=1,
            )
        return None

    def _output(self) -> Any:
        return self._instance if self._instance is not None else self.text
