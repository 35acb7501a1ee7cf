"""Property: whatever body a provider sends, a call returns text or raises a typed error, and the
attempt is ledgered exactly once (issue 17's hostile-input strategies, for reply bodies)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from llm_client import LLMClient, LLMConfig, ProviderError, RetryPolicy
from llm_client.testing import Reply, TestModel

from ._helpers import RecordingSink, SleepRecorder

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
GOOD = {
    "id": "chatcmpl-x",
    "object": "chat.completion",
    "created": 0,
    "model": "gpt-4o-mini",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
}
PATHS = [
    ("choices",),
    ("choices", 0),
    ("choices", 0, "message"),
    ("choices", 0, "message", "content"),
    ("usage",),
    ("usage", "prompt_tokens"),
    ("usage", "completion_tokens"),
    ("id",),
]


@st.composite
def mangled_completions(draw: st.DrawFn) -> Any:
    body: Any = json.loads(json.dumps(GOOD))
    path = draw(st.sampled_from(PATHS))
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()):
        parent[path[-1]] = draw(json_values)
    elif isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent.clear()
    return body


bodies = st.one_of(
    mangled_completions(),
    json_values,
    st.text(max_size=40),  # not JSON (mostly)
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
def test_any_reply_body_gives_text_or_a_typed_error_and_one_ledger_row(body: Any) -> None:
    reply = Reply.raw(body if isinstance(body, str) else json.dumps(body))
    sink = RecordingSink()

    async def run() -> str | BaseException:
        policy = RetryPolicy(max_attempts=1, sleep=SleepRecorder())
        async with LLMClient(sink, config=LLMConfig(), retry=policy) as llm:
            try:
                return await llm.chat("hi", TestModel(reply, name="gpt-4o-mini"))
            except ProviderError as exc:  # ResponseFormatError, or a mapped HTTP failure
                return exc

    outcome = asyncio.run(run())
    event(type(outcome).__name__)
    if isinstance(outcome, str):
        assert outcome  # never "" passed off as a success (no tool calls in these bodies)
    kinds = sink.kinds()
    assert kinds[0] == "reserve"
    assert kinds[1:] in (["settle"], ["release"])
    for record in sink.settled():
        assert record.cost is not None
        assert record.cost >= 0
        assert record.success is isinstance(outcome, str)
