"""The bounded tool loop behind :meth:`LLMClient.run_tools`.

Round = one ordinary call (so every attempt is reserved, settled and ledgered like any other),
then the tools it asked for, run concurrently, their results appended as ``tool`` messages.
A tool that raises, gets arguments that do not validate, or does not exist answers
``{"error": ...}``: the model sees what went wrong and can recover; the loop does not crash.
Caps: ``max_rounds`` model calls, and ``max_cost`` dollars: before every attempt (retries
included) its worst case — the estimate a cost sink reserves: the prompt's tokens at the input
price plus ``max_tokens`` (default 4,096) at the output price — must fit in what the loop has
left, else it stops before anything is reserved or sent. A model without a known price cannot be
capped and is refused. Tools the model asks for in a round after which no round may follow are
not run (their side effects would be wasted).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic_core import to_json

from llm_client._attempts import CallLedger
from llm_client._completion import AttemptRecord, Completion, total_cost
from llm_client._errors import InvalidRequestError, LLMClientError, ToolLoopLimitError
from llm_client._options import CallOptions
from llm_client._tools import Tool, ToolCall, ToolReply
from llm_client._usage import Usage

if TYPE_CHECKING:
    from llm_client._telemetry import Telemetry

__all__ = ["ToolRun", "run_tool_loop", "tool_result_message"]

logger = logging.getLogger("llm_client")

Admit = Callable[[CallLedger, Decimal | None], None]
Call = Callable[[list[dict[str, Any]], CallOptions, Admit | None], Awaitable[Completion[Any]]]


@dataclass(frozen=True, slots=True)
class ToolRun:
    """A finished tool loop.

    Attributes:
        output: The model's final text.
        messages: The whole conversation: the input, every assistant turn, every tool result.
        rounds: One :class:`Completion` per model call, in order.
    """

    output: str
    messages: tuple[dict[str, Any], ...]
    rounds: tuple[Completion[ToolReply], ...]

    @property
    def attempts(self) -> tuple[AttemptRecord, ...]:
        """Every HTTP attempt of every round."""
        return tuple(a for done in self.rounds for a in done.attempts)

    @property
    def cost(self) -> Decimal | None:
        """Dollars of all rounds; None when any billed attempt was unpriced."""
        return total_cost(self.attempts)

    @property
    def usage(self) -> Usage:
        """Tokens of all rounds."""
        return sum((done.usage for done in self.rounds), Usage())


def _result_text(result: Any) -> str:
    if isinstance(result, str):
        return result
    if isinstance(result, BaseModel):
        return result.model_dump_json()
    return to_json(result, fallback=str).decode()


def tool_result_message(call: ToolCall, content: str) -> dict[str, Any]:
    """The ``tool`` message answering ``call``."""
    return {"role": "tool", "tool_call_id": call.id, "content": content}


async def _answer(
    call: ToolCall, tools: dict[str, Tool], telemetry: Telemetry | None
) -> dict[str, Any]:
    with telemetry.tool_span(call.name, call.id) if telemetry else contextlib.nullcontext() as span:
        tool = tools.get(call.name)
        if call.error is not None or tool is None:
            error = call.error or f"unknown tool {call.name!r}"
            _mark_error(span, "InvalidToolCall")
            return tool_result_message(call, json.dumps({"error": error}))
        try:
            result = await tool.run(call)
        except Exception as exc:  # fed back to the model, which may retry or explain
            logger.warning("tool %s raised %s", call.name, type(exc).__name__)
            _mark_error(span, type(exc).__name__)
            error = f"{type(exc).__name__}: {exc}"
            return tool_result_message(call, json.dumps({"error": error}, ensure_ascii=False))
        return tool_result_message(call, _result_text(result))


def _mark_error(span: Any, error: str) -> None:
    if span is not None:
        from llm_client._telemetry import ERROR_TYPE

        span.set_attribute(ERROR_TYPE, error)


def _spent(rounds: Sequence[Completion[Any]]) -> Decimal | None:
    return total_cost(a for done in rounds for a in done.attempts)


async def run_tool_loop(
    call: Call,
    messages: list[dict[str, Any]],
    options: CallOptions,
    *,
    max_rounds: int,
    max_cost: Decimal | None,
    telemetry: Telemetry | None = None,
) -> ToolRun:
    """Run the loop (see the module docstring); ``call`` is one ledgered model call."""
    if max_rounds < 1:
        raise InvalidRequestError("max_rounds must be >= 1")
    if max_cost is not None and (not isinstance(max_cost, Decimal) or max_cost <= 0):
        raise InvalidRequestError("max_cost must be a positive Decimal")
    missing = [tool.name for tool in options.tools if tool.function is None]
    if not options.tools or missing:
        raise InvalidRequestError(
            "run_tools needs tools with functions to run"
            + (f" ({', '.join(missing)} has none)" if missing else "")
        )
    by_name = {tool.name: tool for tool in options.tools}
    history = list(messages)
    rounds: list[Completion[ToolReply]] = []

    def stop(reason: str, message: str, spent: Decimal | None) -> ToolLoopLimitError:
        error = ToolLoopLimitError(
            message, reason=reason, rounds=len(rounds), spent=spent, messages=history
        )
        error.attempt_records = tuple(a for done in rounds for a in done.attempts)
        return error

    def admit(ledger: CallLedger, bound: Decimal | None) -> None:
        # Before each attempt: its worst case (the cost sink's estimate) must fit in the cap.
        assert max_cost is not None
        earlier, now = _spent(rounds), total_cost(ledger.records)
        spent = None if earlier is None or now is None else earlier + now
        if bound is None or spent is None:
            raise stop("unpriced", "the model has no known price: max_cost cannot be kept", spent)
        if spent + bound > max_cost:
            raise stop(
                "cost",
                f"the next attempt may cost up to ${bound}: ${spent} spent of the ${max_cost} cap",
                spent,
            )

    current = options
    while True:
        try:
            done: Completion[ToolReply] = await call(
                history, current, admit if max_cost is not None else None
            )
        except LLMClientError as exc:
            earlier = tuple(a for r in rounds for a in r.attempts)
            exc.attempt_records = earlier + tuple(getattr(exc, "attempt_records", ()))
            raise
        rounds.append(done)
        reply = done.output
        history.append(reply.message)
        if not reply.tool_calls:
            return ToolRun(reply.text, tuple(history), tuple(rounds))
        spent = _spent(rounds)
        if len(rounds) >= max_rounds:
            message = f"the model still called tools after {max_rounds} round(s)"
            raise stop("rounds", message, spent)
        if max_cost is not None and spent is not None and spent >= max_cost:
            # No round can follow, so these tools' side effects would be wasted.
            raise stop("cost", f"the rounds spent ${spent}, the cap is ${max_cost}", spent)
        answers = await asyncio.gather(*(_answer(c, by_name, telemetry) for c in reply.tool_calls))
        history.extend(answers)
        current = dataclasses.replace(current, tool_choice=None)
