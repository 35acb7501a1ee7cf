"""The chat path through a database restart: 50 users, summaries on, nothing lost or crossed.

Fifty users chat at once through ``ConversationMemory`` on PostgreSQL, reached through the
testkit's ``TcpProxy``; two app replicas (two stores, two pools) serve them. Rolling summaries
are written by llm-client against its loopback ``FakeLLMServer``, which also plays the chat
model. A third of the way in, the proxy cuts every database connection and refuses new ones
(the "restart"); it comes back once the outage has been felt. A user whose save raised
retries it, as an app would. Afterwards every history is complete and in order, no context,
summary or model request ever held another user's words, and the database password (a
sentinel) never showed in a log record (DEBUG, every library) or an error.

Size: ``CHAT_CHAOS_USERS`` users x ``CHAT_CHAOS_TURNS`` question/answer turns (50 x 6 in CI,
under 60 s). The large run, with its figures printed::

    CHAT_CHAOS_USERS=300 CHAT_CHAOS_TURNS=10 CHAT_CHAOS_BUDGET=300 \
        uv run pytest tests/chaos/test_chat_chaos.py -s -p no:randomly
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import pytest
from conversation_memory import (
    ConversationMemory,
    LLMSummarizer,
    PostgresMessageStore,
    StoredMessage,
    StoreError,
)
from llm_client import LLMClient, RetryPolicy
from llm_client.testing import FakeLLMServer, RecordedRequest, Reply
from llm_common_testkit import TcpProxy, replace_url

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

USERS = int(os.environ.get("CHAT_CHAOS_USERS", "50"))
TURNS = int(os.environ.get("CHAT_CHAOS_TURNS", "6"))
REPLICAS = 2
BUDGET_SECONDS = float(os.environ.get("CHAT_CHAOS_BUDGET", "60"))
DOWN_AT_LEAST = 1.0  # seconds the database stays away: a restart, not a blip
RETRY_EVERY = 0.05
TAG = re.compile(r"\bu\d{3}-[0-9a-f]{8}\b")
SUMMARY_MARK = "You maintain the running summary"

# The database URL carries this password (the test server trusts loopback, so it is never
# checked); it must not show in any log line, at any level, or in any error.
SENTINEL = "chat-chaos-Sentinel-Pw-51d2"

T = TypeVar("T")


@dataclass
class Run:
    """What the run saw, shared by every simulated user."""

    outage_after: int
    saves: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    landed_despite_error: int = 0
    crossed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cut: asyncio.Event = field(default_factory=asyncio.Event)
    hurt: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: set[str] = field(default_factory=set)
    restored: asyncio.Event = field(default_factory=asyncio.Event)


def _chain(error: BaseException) -> str:
    """An exception's text with its causes' (where a password would hide)."""
    texts = []
    current: BaseException | None = error
    while current is not None and len(texts) < 10:
        texts.append(f"{type(current).__name__}: {current!s} {current!r}")
        current = current.__cause__ or current.__context__
    return "\n".join(texts)


def _model_reply(request: RecordedRequest) -> Reply:
    """The chat model and the summariser in one: echo the tags they were shown."""
    text = "\n".join(str(m.get("content", "")) for m in request.messages)
    if SUMMARY_MARK in text:
        tags = sorted(set(TAG.findall(text)))
        return Reply.text(f"Summary of {' '.join(tags)}: goals and figures so far.")
    question = str(request.messages[-1]["content"])
    return Reply.text(question.replace(" q", " a", 1))


@pytest.fixture
def llm_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(handler=_model_reply) as server:
        yield server


def _store(url: str) -> PostgresMessageStore:
    # A bounded wait for a connection; once the database is back, a call tries it again
    # within half a second (the circuit breaker's interval).
    return PostgresMessageStore(
        url, min_size=1, max_size=15, connect_timeout=3.0, breaker_interval=0.5
    )


async def _until_stored(
    run: Run,
    who: str,
    action: Callable[[], Awaitable[T]],
    *,
    landed: Callable[[], Awaitable[T | None]] | None = None,
    deadline: float,
) -> T:
    """Retry ``action`` through the outage, as an app would; count what the outage cost.

    A save that failed with ``maybe_stored`` may have been committed although its answer was
    cut: the user looks before saving it again. Any other failure is retried blindly, so a
    save that landed without saying so would show as a duplicate in the history.
    """
    maybe_stored = False
    while True:
        if maybe_stored and landed is not None:
            try:
                found = await landed()
            except StoreError:
                found = None
            if found is not None:
                run.landed_despite_error += 1
                return found
        try:
            return await action()
        except StoreError as exc:
            maybe_stored = maybe_stored or getattr(exc, "maybe_stored", False)
            run.failures[type(exc).__name__] += 1
            run.errors.append(_chain(exc))
            if time.monotonic() > deadline:
                raise
            if run.cut.is_set() and not run.restored.is_set():
                run.waiting.add(who)
                if len(run.waiting) >= USERS * 3 // 4:
                    run.hurt.set()  # most users have felt it
            await asyncio.sleep(RETRY_EVERY)  # an app's retry back-off (a poll with a deadline)


async def _user(
    index: int,
    store: PostgresMessageStore,
    llm: LLMClient,
    llm_server: FakeLLMServer,
    run: Run,
    deadline: float,
) -> tuple[str, list[tuple[str, str]]]:
    user_id = str(uuid.uuid4())
    tag = f"u{index:03d}-{user_id[:8]}"
    memory = ConversationMemory(
        store,
        user_id,
        system_prompt="You are a careful financial assistant.",
        max_messages=4,
        summary_threshold=3,
        summary_retry_interval=0,
        summary_timeout=5,
        summarizer=LLMSummarizer(llm, model="openai/summary", api_base=llm_server.base_url),
    )
    sent: list[tuple[str, str]] = []

    async def save(role: str, content: str) -> StoredMessage:
        async def landed() -> StoredMessage | None:
            newest = await memory.history(limit=1)
            if newest and (newest[0].role, newest[0].content) == (role, content):
                return newest[0]
            return None

        saved = await _until_stored(
            run, tag, lambda: memory.save_message(role, content), landed=landed, deadline=deadline
        )
        sent.append((role, content))
        run.saves += 1
        if run.saves >= run.outage_after:
            run.cut.set()
        return saved

    for turn in range(TURNS):
        await save("user", f"{tag} q{turn}: how much should I put into my Roth IRA?")
        context = await _until_stored(run, tag, memory.get_context, deadline=deadline)
        seen = set(TAG.findall("\n".join(m["content"] for m in context)))
        if seen != {tag}:
            run.crossed.append(f"{tag} saw {sorted(seen)}")
        reply = await llm.chat(context, "openai/chat", api_base=llm_server.base_url)
        await save("assistant", reply)
    return user_id, sent


async def _restart(proxy: TcpProxy, run: Run, deadline: float) -> float:
    """Cut the database a third of the way in; bring it back once most users have felt it."""
    async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
        await run.cut.wait()
    await asyncio.to_thread(proxy.stop)
    started = time.monotonic()
    try:
        async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
            await run.hurt.wait()
        # The outage's length is part of the scenario, not a wait for something to happen.
        await asyncio.sleep(max(0.0, started + DOWN_AT_LEAST - time.monotonic()))
    finally:
        await asyncio.to_thread(proxy.start)
    run.restored.set()
    return time.monotonic() - started


async def test_fifty_users_chat_through_a_database_restart(
    postgres_db: str,
    tcp_proxy: TcpProxy,
    llm_server: FakeLLMServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every library's records, at every level
    started = time.monotonic()
    deadline = started + BUDGET_SECONDS - 10
    run = Run(outage_after=USERS * TURNS * 2 // 3)
    url = replace_url(tcp_proxy.url_for(postgres_db), password=SENTINEL)
    stores = [_store(url) for _ in range(REPLICAS)]
    async with LLMClient(retry=RetryPolicy(max_attempts=1)) as llm:
        try:
            for store in stores:
                await store.open()
            restart = asyncio.create_task(_restart(tcp_proxy, run, deadline))
            users = await asyncio.gather(
                *(
                    _user(i, stores[i % REPLICAS], llm, llm_server, run, deadline)
                    for i in range(USERS)
                )
            )
            outage = await restart
        finally:
            for store in stores:
                await store.aclose()
    elapsed = time.monotonic() - started

    # The outage happened mid-run and was felt.
    assert len(run.waiting) >= USERS * 3 // 4, run.failures
    assert set(run.failures) <= {"StoreUnavailableError"}, run.failures
    assert outage >= DOWN_AT_LEAST
    assert run.crossed == []
    assert run.errors
    assert not [e for e in run.errors if SENTINEL in e]
    assert SENTINEL not in caplog.text
    assert all(SENTINEL not in repr(store) for store in stores)

    # Every history complete and in order, read back directly (not through the proxy).
    async with PostgresMessageStore(postgres_db, max_size=4) as owner:
        summaries = 0
        for user_id, sent in users:
            history = await owner.history(user_id, "default", 1000, None)
            assert [(m.role, m.content) for m in history] == sent, user_id
            assert [m.seq for m in history] == list(range(1, 2 * TURNS + 1)), user_id
            snapshot = await owner.load_context(user_id, "default", 1)
            if snapshot.summary is not None:
                summaries += 1
                tags = set(TAG.findall(snapshot.summary.summary))
                assert tags == {TAG.findall(sent[0][1])[0]}, snapshot.summary.summary
                assert snapshot.summary.covers_up_to_seq < 2 * TURNS
    assert summaries >= USERS // 2

    # Nothing the model was sent mixed two users (chat requests and summary requests alike),
    # and no summary was paid for twice (one whose save hit the outage is reused on retry).
    summary_prompts = []
    for request in llm_server.requests:
        text = "\n".join(str(m.get("content", "")) for m in request.messages)
        assert len(set(TAG.findall(text))) == 1, text
        if SUMMARY_MARK in text:
            summary_prompts.append(text)
    assert len(summary_prompts) == len(set(summary_prompts))

    assert elapsed < BUDGET_SECONDS
    print(  # the figures for the closing note (pytest -s shows them)
        f"\nchat chaos: {USERS} users, {run.saves} saves, outage {outage:.2f} s, "
        f"failures {dict(run.failures)}, landed despite an error {run.landed_despite_error}, "
        f"summaries {summaries}, model requests {llm_server.request_count}, {elapsed:.1f} s"
    )
