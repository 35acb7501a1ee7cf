"""Tools the model may call: schemas from plain functions or Pydantic models, typed calls back.

A tool is described to the provider in OpenAI's ``tools`` format (LiteLLM translates it for
Anthropic and the rest). A plain function's JSON schema comes from its signature through a
Pydantic model built once per tool, and its description from the docstring (the summary, and
each parameter's line under ``Args:``). A Pydantic model is a tool whose arguments are the model
itself: the call's arguments come back as a validated instance of exactly that class.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from llm_client._errors import InvalidRequestError
from llm_client._response import get_field

__all__ = ["Tool", "ToolCall", "ToolReply", "ToolSpec", "as_tools", "tool_choice_param"]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ARG_LINE = re.compile(r"^\s{2,}(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.+)$")


def _docstring_parts(doc: str | None) -> tuple[str, dict[str, str]]:
    """The summary paragraph and the ``Args:`` descriptions of a Google-style docstring."""
    text = inspect.cleandoc(doc or "")
    summary = text.split("\n\n", 1)[0].replace("\n", " ").strip()
    params: dict[str, str] = {}
    in_args = False
    current: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in {"Args:", "Arguments:", "Parameters:"}:
            in_args, current = True, None
            continue
        if in_args and stripped.endswith(":") and not line.startswith(" "):
            break  # the next section (Returns:, Raises:)
        if not in_args or not stripped:
            continue
        match = _ARG_LINE.match(line)
        if match and len(line) - len(line.lstrip()) <= 4:
            current = match.group(1).lstrip("*")
            params[current] = match.group(2).strip()
        elif current is not None:
            params[current] += " " + stripped
    return summary, params


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidRequestError(
            f"tool name {name!r} must be 1-64 letters, digits, '_' or '-' (name it explicitly)"
        )
    return name


@dataclass(frozen=True, slots=True)
class Tool:
    """One tool: its name, description, argument model and, for functions, what runs it.

    Build with :meth:`from_function` or :meth:`from_model`, or pass a function or model class
    straight to ``tools=[...]``.

    Attributes:
        name: The name the model calls it by.
        description: What it does (the function's docstring summary, or the model's).
        args_model: The Pydantic model the call's arguments are validated into.
        function: What :meth:`LLMClient.run_tools` calls (None for a model-only tool).
    """

    name: str
    description: str
    args_model: type[BaseModel]
    function: Callable[..., Any] | None = None

    @classmethod
    def from_function(
        cls,
        function: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> Tool:
        """A tool for ``function``: arguments from its signature, description from its docstring.

        Args:
            function: A sync or async function with annotated parameters (no ``*args``).
            name: The tool's name (default: the function's name).
            description: The tool's description (default: the docstring's summary).

        Raises:
            InvalidRequestError: A parameter without an annotation, ``*args``/``**kwargs``, or
                a name providers refuse (a lambda).
        """
        tool_name = _check_name(name or str(getattr(function, "__name__", "")))
        summary, arg_docs = _docstring_parts(inspect.getdoc(function))
        try:
            hints = get_type_hints(function)
        except Exception as exc:  # unresolvable forward references
            raise InvalidRequestError(f"tool {tool_name}: cannot read annotations: {exc}") from None
        fields: dict[str, Any] = {}
        for param in inspect.signature(function).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise InvalidRequestError(f"tool {tool_name}: *args/**kwargs cannot be described")
            if param.name not in hints:
                raise InvalidRequestError(
                    f"tool {tool_name}: parameter {param.name!r} needs a type annotation"
                )
            default = ... if param.default is param.empty else param.default
            fields[param.name] = (
                hints[param.name],
                Field(default, description=arg_docs.get(param.name)),
            )
        model = create_model(
            f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields
        )
        return cls(tool_name, description or summary, model, function)

    @classmethod
    def from_model(
        cls, model: type[BaseModel], *, name: str | None = None, description: str | None = None
    ) -> Tool:
        """A tool whose arguments are ``model`` (the call comes back as a ``model`` instance).

        Args:
            model: A Pydantic model class.
            name: The tool's name (default: the class name).
            description: The description (default: the class docstring's summary).
        """
        summary, _ = _docstring_parts(model.__doc__)
        return cls(_check_name(name or model.__name__), description or summary, model)

    def definition(self) -> dict[str, Any]:
        """The tool in OpenAI's ``tools`` format (``{"type": "function", "function": ...}``)."""
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        function: dict[str, Any] = {"name": self.name, "parameters": schema}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}

    async def run(self, call: ToolCall) -> Any:
        """Call the function with the call's validated arguments; await it if it is async.

        Raises:
            InvalidRequestError: This tool has no function.
            Exception: Whatever the function raised.
        """
        if self.function is None:
            raise InvalidRequestError(f"tool {self.name} has no function to run")
        args = call.args if call.args is not None else self.validate(call.arguments)
        values = {name: getattr(args, name) for name in type(args).model_fields}
        result = self.function(**values)
        if inspect.isawaitable(result):
            result = await result
        return result

    def validate(self, arguments: str) -> BaseModel:
        """The call's JSON ``arguments`` validated into :attr:`args_model`.

        Raises:
            pydantic.ValidationError: The arguments are not valid JSON or do not validate.
        """
        return self.args_model.model_validate_json(arguments or "{}")


ToolSpec = Callable[..., Any] | type[BaseModel] | Tool
"""What ``tools=[...]`` accepts: a function (sync or async), a Pydantic model class, a Tool."""


def as_tools(tools: Sequence[ToolSpec] | None) -> tuple[Tool, ...]:
    """``tools=[...]`` as :class:`Tool` objects (functions and model classes converted).

    Raises:
        InvalidRequestError: Something that is not a tool, or two tools with one name.
    """
    if tools is None:
        return ()
    if isinstance(tools, str | bytes | Mapping) or not isinstance(tools, Sequence):
        raise InvalidRequestError("tools must be a list of functions, Pydantic models or Tools")
    out: list[Tool] = []
    for item in tools:
        if isinstance(item, Tool):
            out.append(item)
        elif isinstance(item, type) and issubclass(item, BaseModel):
            out.append(Tool.from_model(item))
        elif callable(item) and not isinstance(item, type):
            out.append(Tool.from_function(item))
        else:
            raise InvalidRequestError(f"not a tool: {item!r}")
    names = [tool.name for tool in out]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InvalidRequestError(f"two tools share the name {duplicates[0]!r}")
    return tuple(out)


def tool_choice_param(choice: Any, tools: Sequence[Tool]) -> Any:
    """``tool_choice`` in OpenAI's format: ``auto``/``none``/``required`` or a named function.

    A tool's name, its function, its model class or the :class:`Tool` itself names it.

    Raises:
        InvalidRequestError: An unknown tool, or a choice without tools.
    """
    if choice is None:
        return None
    if choice in ("auto", "none", "required"):
        return choice
    if not tools:
        raise InvalidRequestError("tool_choice needs tools")
    for tool in tools:
        if choice in (tool, tool.name, tool.function) or choice is tool.args_model:
            return {"type": "function", "function": {"name": tool.name}}
    raise InvalidRequestError(f"tool_choice {choice!r} is none of the tools")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model asked for.

    Attributes:
        id: The provider's call id (tool results answer it).
        name: The tool's name.
        arguments: The arguments as the model sent them (JSON text).
        args: The arguments validated into the tool's model (an instance of your model class
            for a model tool); None when they did not validate or the tool is unknown.
        error: Why ``args`` is None.
    """

    id: str
    name: str
    arguments: str
    args: BaseModel | None = None
    error: str | None = None

    def message(self) -> dict[str, Any]:
        """This call as it appears in an assistant message's ``tool_calls``."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True, slots=True)
class ToolReply:
    """What ``chat(..., tools=...)`` returns: text and/or tool calls.

    Attributes:
        text: The reply's text ("" when the model only called tools).
        tool_calls: The calls it asked for, in order (several: parallel calls).
    """

    text: str
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation before the tool results."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            message["tool_calls"] = [call.message() for call in self.tool_calls]
        return message


def tool_reply(response: Any, text: str, tools: Sequence[Tool]) -> ToolReply:
    """Read the tool calls of a chat completion (any route) into a :class:`ToolReply`."""
    by_name = {tool.name: tool for tool in tools}
    message = get_field(get_field(response, "choices")[0], "message")
    raw_calls = get_field(message, "tool_calls") or []
    calls: list[ToolCall] = []
    for index, raw in enumerate(raw_calls):
        function = get_field(raw, "function")
        name = str(get_field(function, "name") or "")
        arguments = get_field(function, "arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments if arguments is not None else {})
        call_id = str(get_field(raw, "id") or f"call_{index}")
        tool = by_name.get(name)
        if tool is None:
            calls.append(ToolCall(call_id, name, arguments, error=f"unknown tool {name!r}"))
            continue
        try:
            args = tool.validate(arguments)
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()
            )
            calls.append(ToolCall(call_id, name, arguments, error=f"invalid arguments: {detail}"))
            continue
        calls.append(ToolCall(call_id, name, arguments, args=args))
    return ToolReply(text, tuple(calls))
