"""The token budget: whole messages only, newest user turn always kept (Hypothesis)."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path

from conversation_memory import ConversationMemory, LocalMessageStore
from conversation_memory._window import select_window
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llm_client import count_tokens

turns = st.lists(
    st.tuples(st.sampled_from(["user", "assistant", "system"]), st.integers(1, 400)),
    max_size=40,
)


@given(turns, st.integers(1, 25), st.integers(0, 3000))
def test_window_is_the_longest_fitting_suffix_with_the_newest_user_turn(
    history: list[tuple[str, int]], max_messages: int, budget: int
) -> None:
    chosen = select_window(
        history,
        cost=lambda m: m[1],
        is_user=lambda m: m[0] == "user",
        max_messages=max_messages,
        budget=budget,
    )
    start = len(history) - len(chosen)
    assert chosen == history[start:]  # a suffix of whole, unchanged messages
    users = [i for i, m in enumerate(history) if m[0] == "user"]
    required = users[-1] if users else len(history)
    assert start <= required  # the newest user turn is never dropped
    optional = history[start:required]
    within = len(history) - start <= max_messages and sum(m[1] for m in chosen) <= budget
    assert within or not optional  # limits are broken only by the required suffix
    if start > 0 and start < required + 1:
        one_more = history[start - 1 :]
        assert (
            start - 1 >= required
            or len(one_more) > max_messages
            or sum(m[1] for m in one_more) > budget
        )  # maximal: the next older message would not fit


lengths = st.lists(st.integers(1, 300), min_size=1, max_size=14)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lengths, st.integers(1, 10), st.integers(50, 2500), st.booleans(), st.booleans())
def test_get_context_fits_the_budget_with_real_tokens(
    sizes: list[int], max_messages: int, budget: int, ends_with_assistant: bool, exact: bool
) -> None:
    asyncio.run(_check_context(sizes, max_messages, budget, ends_with_assistant, exact))


async def _check_context(
    sizes: list[int], max_messages: int, budget: int, ends_with_assistant: bool, exact: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalMessageStore(Path(tmp) / "m.sqlite3", threads=1)
        user = str(uuid.uuid4())
        memory = ConversationMemory(
            store,
            user,
            system_prompt="You are a careful financial assistant.",
            max_messages=max_messages,
            max_context_tokens=budget,
            exact_tokens=exact,
        )
        stored = []
        for i, size in enumerate(sizes):
            role = "user" if i % 2 == 0 else "assistant"
            if ends_with_assistant and i == len(sizes) - 1:
                role = "assistant"
            content = " ".join(f"w{i}x{j}" for j in range(size))
            stored.append(await memory.save_message(role, content))
        context = await memory.get_context()
        await store.aclose()

    assert context[0] == {"role": "system", "content": "You are a careful financial assistant."}
    kept = context[1:]
    assert kept == [m.to_chat() for m in stored[len(stored) - len(kept) :]]  # whole, in order
    users = [m for m in stored if m.role == "user"]
    if users:
        assert users[-1].to_chat() in kept
        required = stored[stored.index(users[-1]) :]
        required_tokens = count_tokens([context[0], *(m.to_chat() for m in required)])
        if required_tokens <= budget:
            assert count_tokens(context) <= budget
        if len(kept) > len(required):
            assert len(kept) <= max_messages
    else:
        assert count_tokens(context) <= budget
    if exact and len(kept) < min(len(stored), max_messages):
        # Exact counts keep every message the budget allows: one more would not fit.
        one_more = [context[0], *(m.to_chat() for m in stored[len(stored) - len(kept) - 1 :])]
        assert count_tokens(one_more) > budget


async def test_newest_user_turn_is_found_beyond_the_message_window(tmp_path: Path) -> None:
    store = LocalMessageStore(tmp_path / "m.sqlite3")
    memory = ConversationMemory(store, uuid.uuid4(), max_messages=5)
    await memory.save_message("user", "Please list my accounts.")
    for i in range(12):
        await memory.save_message("assistant", f"Account {i}")
    context = await memory.get_context()
    await store.aclose()
    assert context[0] == {"role": "user", "content": "Please list my accounts."}
    assert [m["content"] for m in context[1:]] == [f"Account {i}" for i in range(12)]


async def test_budget_smaller_than_the_question_still_keeps_it(tmp_path: Path) -> None:
    store = LocalMessageStore(tmp_path / "m.sqlite3")
    memory = ConversationMemory(store, uuid.uuid4(), max_context_tokens=10)
    await memory.save_message("assistant", "Earlier answer")
    question = "Explain the wash-sale rule for my taxable account in detail, please. " * 5
    await memory.save_message("user", question)
    context = await memory.get_context()
    await store.aclose()
    assert context == [{"role": "user", "content": question}]
