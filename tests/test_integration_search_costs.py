"""WebSearchClient (and LLMClient) reporting to one CostTracker; secrets kept out of everything.

Real HTTP to web-search's loopback z.ai server and llm-client's ``FakeLLMServer``; cost-tracker on
its local store and on real PostgreSQL. A search that goes upstream costs $0.01 and is recorded
under step ``research``; a cache hit costs and records nothing; a budget refusal stops the call
before it is sent; breakdowns partition the whole spend exactly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel

os.environ.setdefault("LLM_CLIENT_BLOCK_REAL_REQUESTS", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import cost_tracker
import llm_client
import web_search
from cost_tracker import CostMetrics, CostTracker, LocalCostStore
from llm_client import LLMClient, LLMConfig
from llm_client import RetryPolicy as LLMRetry
from llm_client.testing import FakeLLMServer
from llm_client.testing import Reply as LLMReply
from web_search import LocalSearchCache, RetryPolicy, SearchCache, WebSearchClient
from web_search.testing import FakeZaiSearchServer
from web_search.testing import Reply as SearchReply

CENT = Decimal("0.01")
ENGINE = "search-prime"
MINI = "openai/gpt-4o-mini"
# Cost-tracker backends (make_tracker comes from tests/conftest.py); Supabase is the real async
# client through testkit's PostgREST-compatible server.
BACKENDS = ["local", pytest.param("postgres", marks=pytest.mark.postgres)]
ALL_BACKENDS = [*BACKENDS, pytest.param("supabase", marks=pytest.mark.postgres)]
MakeTracker = Callable[..., Awaitable[CostTracker]]

FAST = RetryPolicy(max_attempts=3, initial_wait=0.001, max_wait=0.002, jitter=0.0)


class Draft(BaseModel):
    summary: str
    households_affected: int


async def _no_wait(_: float) -> None:
    return None


def window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(days=2), now + timedelta(days=2)


async def all_records(tracker: CostTracker) -> list[CostMetrics]:
    return await tracker.get_records(*window())


@pytest.fixture(scope="session")
def _zai_server() -> Iterator[FakeZaiSearchServer]:
    with FakeZaiSearchServer() as server:
        yield server


@pytest.fixture
def zai(_zai_server: FakeZaiSearchServer) -> Iterator[FakeZaiSearchServer]:
    """The loopback z.ai search server, script and counters cleared."""
    _zai_server.reset()
    yield _zai_server
    _zai_server.reset()


@pytest.fixture
async def own_zai() -> AsyncIterator[FakeZaiSearchServer]:
    """A z.ai server of this test's own, for tests that hold requests with ``hang_forever``.

    (The shared server cannot be used for that: see the release-hangs test below.)
    """
    async with FakeZaiSearchServer() as server:
        yield server


def make_search(
    zai: FakeZaiSearchServer, tracker: CostTracker, cache_dir: Path | None, **kwargs: Any
) -> WebSearchClient:
    persistent = LocalSearchCache(cache_dir) if cache_dir is not None else None
    return WebSearchClient(
        "zai",
        cache=SearchCache(persistent),
        cost_sink=tracker,
        api_key=kwargs.pop("api_key", "test-zai-key"),
        base_url=zai.base_url,
        retry=FAST,
        **kwargs,
    )


# --- one cent per upstream call, nothing for hits ------------------------------------------------


@pytest.mark.parametrize("make_tracker", ALL_BACKENDS, indirect=True)
async def test_each_upstream_call_records_a_cent_and_cache_hits_record_nothing(
    zai: FakeZaiSearchServer, make_tracker: MakeTracker, tmp_path: Path
) -> None:
    tracker = await make_tracker(daily_budget=Decimal("1"))
    cache = tmp_path / "search-cache"
    async with make_search(zai, tracker, cache) as search:
        first = await search.search_detailed("California rent cap fiscal impact")
        assert (first.source, first.cost) == ("upstream", CENT)
        assert len(await all_records(tracker)) == 1

        again = await search.search_detailed("  california RENT cap   fiscal impact ")
        assert (again.source, again.cost, again.saved) == ("l1", 0, CENT)
        fanned = await search.search_detailed(
            "minimum wage ordinance", domains=["lao.ca.gov", "dof.ca.gov"]
        )
        assert (fanned.source, fanned.cost) == ("upstream", 2 * CENT)  # one call per domain
        zai.script(SearchReply.rate_limited(retry_after=0))  # unbilled, released, retried
        retried = await search.search_detailed("housing voucher wait list", step="finance")
        assert retried.source == "upstream"
        stats = await search.get_cache_stats()
    async with make_search(zai, tracker, cache) as replica:  # a fresh process: L1 empty
        shared = await replica.search_detailed("California rent cap fiscal impact")
        assert (shared.source, shared.cost) == ("l2", 0)

    assert zai.calls == 1 + 2 + 2  # the rate-limited attempt reached the server but billed 0
    records = await all_records(tracker)
    assert len(records) == 4
    assert len({r.idempotency_id for r in records}) == 4
    for record in records:
        assert record.cost == CENT
        assert (record.provider, record.model, record.success) == ("zai", ENGINE, True)
        assert record.metadata.get("kind") == "web_search"
        assert (record.prompt_tokens, record.completion_tokens) == (0, 0)
    assert sorted(r.step or "" for r in records) == ["finance", "research", "research", "research"]
    assert stats.upstream_calls == 4
    assert stats.dollars_spent == 4 * CENT == sum(r.cost or 0 for r in records)
    assert await tracker.get_daily_cost() == 4 * CENT
    status = await tracker.budget_status()
    assert (status.spent, status.reserved, status.open_reservations) == (4 * CENT, 0, 0)


async def test_a_budget_refusal_stops_the_upstream_call(
    zai: FakeZaiSearchServer, tmp_path: Path
) -> None:
    tracker = CostTracker(
        LocalCostStore(tmp_path / "c"),
        daily_budget=Decimal("0.03"),
        project="search-budget",
        outbox_path=tmp_path / "o",
        retry_interval=None,
    )
    async with tracker, make_search(zai, tracker, None) as search:
        await search.search("property tax relief")
        await search.search("school bond measure")
        assert zai.calls == 2
        with pytest.raises(web_search.BudgetExceededError) as refused:
            # Two domains: two calls of a cent each, but only one cent is left.
            await search.search("transit fare subsidy", domains=["a.gov", "b.gov"])
        assert search_refusal_of(refused.value).requested == CENT
        assert zai.calls <= 3  # the refused half was never sent
        recorded = len(await all_records(tracker))
        # The half that fitted either finished (recorded) or was cancelled with its sibling
        # (released); either way nothing stays reserved and nothing is recorded twice.
        assert recorded in (2, 3)
        assert recorded <= zai.calls
        status = await tracker.budget_status()
        assert (status.reserved, status.open_reservations) == (0, 0)
        if recorded == 2:
            await search.search("transit fare subsidy")  # spend the last cent
        sent = zai.calls
        with pytest.raises(web_search.BudgetExceededError) as again:
            await search.search("a query the budget cannot pay for")
        search_refusal_of(again.value)
        assert zai.calls == sent  # refused before the request was made
        # A cache hit costs nothing, so it is served even with the budget used up.
        assert await search.search("property tax relief")
        assert zai.calls == sent
        records = await all_records(tracker)
        status = await tracker.budget_status()
    assert len(records) == 3
    assert (status.spent, status.reserved, status.open_reservations) == (3 * CENT, 0, 0)


async def test_a_search_abandoned_in_flight_leaves_no_reservation_behind(
    own_zai: FakeZaiSearchServer, tmp_path: Path
) -> None:
    zai = own_zai
    tracker = CostTracker(
        LocalCostStore(tmp_path / "c"),
        daily_budget=Decimal("1"),
        project="search-cancel",
        outbox_path=tmp_path / "o",
        retry_interval=None,
    )
    zai.script(SearchReply.hang_forever())
    async with tracker:
        search = make_search(zai, tracker, None)
        task = asyncio.create_task(search.search("school funding formula"))
        await zai.wait_for_calls(1, within=60)
        assert (await tracker.budget_status()).reserved == CENT  # held while in flight
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await search.aclose()  # the upstream call is abandoned with the client
        zai.release_hangs()
        status = await tracker.budget_status()
        assert (status.reserved, status.open_reservations, status.spent) == (0, 0, 0)
        assert await all_records(tracker) == []


async def test_a_billed_but_unreadable_answer_is_recorded_as_a_failed_cent(
    zai: FakeZaiSearchServer, tmp_path: Path
) -> None:
    tracker = CostTracker(
        LocalCostStore(tmp_path / "c"),
        daily_budget=Decimal("1"),
        project="search-garbled",
        outbox_path=tmp_path / "o",
        retry_interval=None,
    )
    zai.script(SearchReply.raw(200, b"<html>gateway hiccup</html>"))
    async with tracker, make_search(zai, tracker, None) as search:
        with pytest.raises(web_search.ResponseFormatError):
            await search.search("utility rate case")
        [record] = await all_records(tracker)
        status = await tracker.budget_status()
    assert zai.calls == 1  # not retried: the call was answered (and billed)
    assert (record.cost, record.success, record.error) == (CENT, False, "ResponseFormatError")
    assert (status.spent, status.reserved, status.open_reservations) == (CENT, 0, 0)


@pytest.mark.postgres
@pytest.mark.parametrize("make_tracker", ["postgres"], indirect=True)
async def test_fifty_concurrent_searches_against_n_cents_make_exactly_n_upstream_calls(
    own_zai: FakeZaiSearchServer, make_tracker: MakeTracker
) -> None:
    zai = own_zai
    searches, fits = 50, 13
    tracker = await make_tracker(daily_budget=CENT * fits)
    zai.script(*[SearchReply.hang_forever()] * searches)  # held until every caller is decided
    async with make_search(zai, tracker, None) as search:
        tasks = [
            asyncio.create_task(search.search(f"county property tax levy {i}"))
            for i in range(searches)
        ]
        pending: set[asyncio.Task[Any]] = set(tasks)
        async with asyncio.timeout(60):
            while searches - len(pending) < searches - fits:
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        await zai.wait_for_calls(fits, within=60)
        assert zai.calls == fits
        held = await tracker.budget_status()
        assert (held.reserved, held.open_reservations) == (CENT * fits, fits)
        zai.release_hangs()  # the held calls now answer, and are billed
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, web_search.BudgetExceededError)]
    assert all(isinstance(o.__cause__, cost_tracker.BudgetExceededError) for o in refused)
    answered = [o for o in outcomes if isinstance(o, list)]
    assert (len(refused), len(answered)) == (searches - fits, fits)
    assert zai.calls == fits
    records = await all_records(tracker)
    assert len(records) == fits
    status = await tracker.budget_status()
    assert (status.spent, status.reserved, status.open_reservations) == (CENT * fits, 0, 0)


async def test_the_fake_search_server_holds_requests_again_after_releasing_hangs(
    own_zai: FakeZaiSearchServer, tmp_path: Path
) -> None:
    """``release_hangs`` ends the hangs of *now*; a later ``hang_forever`` must hang again.

    Needed by any suite that shares one server across tests (its documented fixture shape).
    """
    zai = own_zai
    tracker = CostTracker(LocalCostStore(tmp_path / "c"), outbox_path=tmp_path / "o")
    zai.script(SearchReply.hang_forever(), SearchReply.hang_forever())
    async with tracker, make_search(zai, tracker, None, timeout=0.5) as search:
        first = asyncio.create_task(search.search("first held query"))
        await zai.wait_for_calls(1, within=60)
        zai.release_hangs()
        assert await first  # released: answered with generated results
        zai.reset()
        zai.script(SearchReply.hang_forever())
        # Held again, so the client's 0.5 s timeout must fire; an answer means it never hung.
        with pytest.raises(web_search.SearchTimeoutError):
            await search.search("second held query")


# --- llm and search spend, one set of books -------------------------------------------------------


@pytest.mark.parametrize("make_tracker", ALL_BACKENDS, indirect=True)
async def test_breakdowns_partition_llm_and_search_spend_exactly(
    zai: FakeZaiSearchServer, llm_fake: FakeLLMServer, make_tracker: MakeTracker
) -> None:
    tracker = await make_tracker(daily_budget=Decimal("10"))
    llm_fake.script(
        LLMReply.invalid_json().with_usage(prompt_tokens=1200, completion_tokens=33),
        LLMReply.json({"summary": "Rents fall.", "households_affected": 120000}).with_usage(
            prompt_tokens=1350, completion_tokens=41
        ),
        LLMReply.text("Looks right.").with_usage(prompt_tokens=900, completion_tokens=5),
    )
    llm = LLMClient(tracker, config=LLMConfig(), retry=LLMRetry(sleep=_no_wait))
    async with llm, make_search(zai, tracker, None) as search:
        for query in ("rent cap", "rent cap", "eviction filings", "landlord costs"):
            await search.search(query)
        drafted = await llm.complete(
            "Draft it.", MINI, Draft, step="generate", api_base=llm_fake.base_url
        )
        reviewed = await llm.complete("Review it.", MINI, step="review", api_base=llm_fake.base_url)
    assert drafted.cost is not None
    assert reviewed.cost is not None

    records = await all_records(tracker)
    total = sum((r.cost for r in records if r.cost is not None), Decimal(0))
    expected_steps = {
        "research": (3 * CENT, 3),
        "generate": (drafted.cost, 2),
        "review": (reviewed.cost, 1),
    }
    by_step = await tracker.get_cost_breakdown(*window(), group_by="step")
    assert {row.key: (row.total_cost, row.calls) for row in by_step} == expected_steps
    assert sum((row.total_cost for row in by_step), Decimal(0)) == total
    assert total == 3 * CENT + drafted.cost + reviewed.cost
    assert await tracker.get_daily_cost() == total
    generate = next(row for row in by_step if row.key == "generate")
    assert (generate.prompt_tokens, generate.completion_tokens, generate.failed_calls) == (
        1200 + 1350,
        33 + 41,
        1,
    )
    for group_by in ("model", "project", "day"):
        rows = await tracker.get_cost_breakdown(*window(), group_by=group_by)  # type: ignore[arg-type]
        assert sum((row.total_cost for row in rows), Decimal(0)) == total, group_by
        assert sum(row.calls for row in rows) == len(records) == 6, group_by
    by_model = await tracker.get_cost_breakdown(*window(), group_by="model")
    assert {row.key: row.total_cost for row in by_model} == {
        ENGINE: 3 * CENT,
        MINI: drafted.cost + reviewed.cost,
    }


# --- secrets -------------------------------------------------------------------------------------


def _texts_of(exc: BaseException) -> list[str]:
    """What an exception shows: str, repr, attributes, and the traceback a handler would print.

    The chain is followed as ``traceback`` follows it: explicit causes, and implicit context
    unless suppressed with ``raise ... from None``.
    """
    texts = ["".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args)]
        texts += [repr(v) for v in getattr(current, "__dict__", {}).values()]
        if current.__cause__ is not None:
            current = current.__cause__
        else:
            current = None if current.__suppress_context__ else current.__context__
    return texts


def _log_texts(records: list[logging.LogRecord]) -> list[str]:
    formatter = logging.Formatter()
    texts: list[str] = []
    for record in records:
        texts += [record.getMessage(), repr(record.args), repr(record.msg)]
        if record.exc_info:
            texts.append(formatter.formatException(record.exc_info))
        if record.exc_text:
            texts.append(record.exc_text)
    return texts


@pytest.mark.postgres
async def test_api_keys_never_reach_logs_errors_reprs_or_cost_rows(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    llm_fake: FakeLLMServer,
    postgres_db: str,
    tmp_path: Path,
) -> None:
    from cost_tracker import PostgresCostStore

    or_key = f"OPENROUTER-SENTINEL-{uuid.uuid4().hex}"
    zai_key = f"ZAI-SENTINEL-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENROUTER_API_KEY", or_key)
    monkeypatch.setenv("ZAI_API_KEY", zai_key)
    caplog.set_level(logging.DEBUG)  # every logger, root included
    for name in ("llm_client", "web_search", "cost_tracker", "httpx", "httpcore", "openai"):
        caplog.set_level(logging.DEBUG, logger=name)

    errors: list[BaseException] = []
    model = "openrouter/openai/gpt-4o-mini"
    async with FakeZaiSearchServer(api_key=zai_key) as zai:  # answers only the right key
        tracker = CostTracker(
            PostgresCostStore(postgres_db, max_size=2),
            daily_budget="5",
            project="secrets",
            outbox_path=tmp_path / "o",
            retry_interval=None,
        )
        llm = LLMClient(tracker, config=LLMConfig.load(), retry=LLMRetry(sleep=_no_wait))
        search = WebSearchClient(
            "zai", cache=SearchCache(None), cost_sink=tracker, base_url=zai.base_url, retry=FAST
        )  # the key comes from ZAI_API_KEY
        async with tracker, llm, search:
            base = llm_fake.openrouter_base_url
            assert await llm.chat("hi", model, step="generate", api_base=base)
            assert await search.search("rent cap")
            assert zai.requests[-1].bearer_ok  # the real key was sent, and accepted
            llm_fake.script(
                LLMReply.error(500),
                LLMReply.error(502),
                LLMReply.error(503),
                LLMReply.error(401),
                *[LLMReply.invalid_json()] * 3,
            )
            zai.script(*[SearchReply.server_error()] * 3, SearchReply.unauthorized())
            calls: list[Callable[[], Awaitable[Any]]] = [
                lambda: llm.chat("hi", model, step="generate", api_base=base),
                lambda: llm.chat("hi", model, step="generate", api_base=base),
                lambda: llm.chat("hi", model, Draft, step="generate", api_base=base),
                lambda: search.search("tax credit"),
                lambda: search.search("tax credit again"),
            ]
            for call in calls:
                try:
                    await call()
                except Exception as exc:
                    errors.append(exc)
            reprs = [repr(llm), repr(llm.config), repr(search), repr(search.provider)]
            reprs.append(repr(tracker))
    names = [type(e).__name__ for e in errors]
    assert names == [
        "ServerError",
        "AuthenticationError",
        "StructuredOutputError",
        "ServerError",
        "AuthenticationError",
    ]
    async with await psycopg.AsyncConnection.connect(postgres_db) as conn:
        cursor = await conn.execute("select t::text from cost_tracking t")
        rows = [row[0] for row in await cursor.fetchall()]
    assert len(rows) == 2 + 3  # two successes, three billed invalid replies
    haystacks = {
        "logs": _log_texts(caplog.records),
        "errors": [text for exc in errors for text in _texts_of(exc)],
        "reprs": reprs,
        "rows": rows,
    }
    assert caplog.records  # the failures were logged
    for where, texts in haystacks.items():
        for key in (or_key, zai_key):
            leaks = [text for text in texts if key in text]
            assert not leaks, f"{key[:18]} leaked into {where}: {leaks[:2]}"


async def test_a_key_echoed_back_by_the_search_provider_is_not_repeated(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    zai_key = f"ZAI-SENTINEL-{uuid.uuid4().hex}"
    monkeypatch.setenv("ZAI_API_KEY", zai_key)
    caplog.set_level(logging.DEBUG)
    # Gateways and some providers quote the credential they rejected in the error body.
    echo = (
        b'{"error": {"code": "1002", "message": "Invalid Authentication Token: '
        + zai_key.encode()
        + b'"}}'
    )
    tracker = CostTracker(LocalCostStore(tmp_path / "c"), outbox_path=tmp_path / "o")
    async with FakeZaiSearchServer() as zai:
        zai.script(SearchReply.raw(401, echo))
        async with (
            tracker,
            WebSearchClient(
                "zai", cache=SearchCache(None), cost_sink=tracker, base_url=zai.base_url, retry=FAST
            ) as search,
        ):
            with pytest.raises(web_search.AuthenticationError) as failed:
                await search.search("rent cap")
    leaks = [t for t in _texts_of(failed.value) + _log_texts(caplog.records) if zai_key in t]
    assert not leaks, leaks[:2]


async def test_a_key_echoed_back_by_the_llm_provider_is_not_repeated(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, llm_fake: FakeLLMServer
) -> None:
    or_key = f"OPENROUTER-SENTINEL-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENROUTER_API_KEY", or_key)
    caplog.set_level(logging.DEBUG)
    body = {"error": {"message": f"Incorrect API key provided: {or_key}", "code": 401}}
    llm_fake.script(LLMReply.error(401, body=body))
    async with LLMClient(config=LLMConfig.load(), retry=LLMRetry(sleep=_no_wait)) as llm:
        with pytest.raises(llm_client.AuthenticationError) as failed:
            await llm.chat(
                "hi", "openrouter/openai/gpt-4o-mini", api_base=llm_fake.openrouter_base_url
            )
    leaks = [t for t in _texts_of(failed.value) + _log_texts(caplog.records) if or_key in t]
    assert not leaks, leaks[:2]


async def test_a_database_password_stays_out_of_errors_and_logs_of_a_refused_call(
    caplog: pytest.LogCaptureFixture, llm_fake: FakeLLMServer, tmp_path: Path
) -> None:
    from cost_tracker import PostgresCostStore

    password = f"PGPASS-SENTINEL-{uuid.uuid4().hex}"
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    caplog.set_level(logging.DEBUG)
    store = PostgresCostStore(
        f"postgresql://postgres:{password}@127.0.0.1:{port}/costs", connect_timeout=1
    )
    tracker = CostTracker(store, daily_budget="1", outbox_path=tmp_path / "o", retry_interval=None)
    async with (
        tracker,
        LLMClient(tracker, config=LLMConfig(), retry=LLMRetry(sleep=_no_wait)) as llm,
    ):
        with pytest.raises(cost_tracker.StoreUnavailableError) as failed:
            await llm.chat("hi", MINI, api_base=llm_fake.base_url)
        texts = [*_texts_of(failed.value), repr(tracker), repr(store), repr(llm)]
    assert llm_fake.request_count == 0
    leaks = [t for t in texts + _log_texts(caplog.records) if password in t]
    assert not leaks, leaks[:2]


def search_refusal_of(error: BaseException) -> cost_tracker.BudgetExceededError:
    """The tracker's refusal behind web-search's BudgetExceededError (its ``__cause__``)."""
    assert isinstance(error, web_search.BudgetExceededError)
    assert isinstance(error, web_search.WebSearchError)
    cause = error.__cause__
    assert isinstance(cause, cost_tracker.BudgetExceededError)
    assert str(cause) in str(error)
    return cause
