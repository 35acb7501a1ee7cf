"""Cross-package fixtures: the loopback LLM and search servers, cost-tracker, the pipeline stack."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

ANALYST = "openai/gpt-4o-mini"  # priced in LiteLLM's map, so budgets and costs are real numbers
REVIEWER = "openai/gpt-4.1-mini"  # a different model reviews, as the pipeline expects


@pytest.fixture(scope="session")
def _llm_server() -> Iterator[Any]:
    from llm_client.testing import FakeLLMServer

    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def llm_server(_llm_server: Any) -> Any:
    """The loopback OpenAI-compatible server answering bill-specific, schema-valid JSON."""
    from analysis_pipeline.testing import offline_handler

    _llm_server.reset()
    _llm_server.handler = offline_handler
    return _llm_server


@pytest.fixture
def llm_fake(_llm_server: Any) -> Iterator[Any]:
    """The loopback OpenAI-compatible server with no handler: scripted replies, else auto."""
    _llm_server.reset()
    yield _llm_server
    _llm_server.reset()


# Cost-tracker backends for the cross-package cost tests; Supabase is the real async client
# through testkit's PostgREST-compatible server.
BACKENDS = ["local", pytest.param("postgres", marks=pytest.mark.postgres)]
ALL_BACKENDS = [*BACKENDS, pytest.param("supabase", marks=pytest.mark.postgres)]

MakeTracker = Callable[..., Awaitable[Any]]


@pytest.fixture(params=BACKENDS)
async def make_tracker(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[MakeTracker]:
    """Trackers on the local store, PostgreSQL or Supabase (one private database per test).

    ``make(**kwargs)`` passes ``kwargs`` to ``CostTracker`` (project ``integration``, an outbox
    in the test's directory and no background retries unless given); ``pool`` sizes the
    PostgreSQL pool.
    """
    from cost_tracker import CostTracker, LocalCostStore

    opened: list[Any] = []

    async def make(**kwargs: Any) -> Any:
        pool = kwargs.pop("pool", 4)
        if request.param == "local":
            store: Any = LocalCostStore(tmp_path / "costs")
        elif request.param == "supabase":
            from cost_tracker import SupabaseCostStore
            from supabase import acreate_client

            server = request.getfixturevalue("supabase_server")
            store = SupabaseCostStore(await acreate_client(server.url, server.service_key))
        else:
            from cost_tracker import PostgresCostStore

            store = PostgresCostStore(request.getfixturevalue("postgres_db"), max_size=pool)
        kwargs.setdefault("project", "integration")
        kwargs.setdefault("outbox_path", tmp_path / "outbox.sqlite")
        kwargs.setdefault("retry_interval", None)
        tracker = CostTracker(store, **kwargs)
        opened.append(tracker)
        return tracker

    yield make
    for tracker in opened:
        await tracker.aclose()


@pytest.fixture(scope="session")
def _search_server() -> Iterator[Any]:
    from web_search.testing import FakeZaiSearchServer

    with FakeZaiSearchServer() as server:
        yield server


@pytest.fixture
def search_server(_search_server: Any) -> Any:
    """The loopback z.ai-compatible search server (results generated per query)."""
    _search_server.reset()
    return _search_server


async def _no_wait(_: float) -> None:
    return None


@dataclass
class Stack:
    """A pipeline wired like production, every edge on loopback."""

    pipeline: Any
    tracker: Any
    llm: Any
    search: Any

    async def step_costs(self) -> dict[str | None, Any]:
        """Cost-tracker's records grouped by step."""
        from datetime import UTC, datetime, timedelta

        now = datetime.now(UTC)
        rows = await self.tracker.get_cost_breakdown(
            now - timedelta(days=1), now + timedelta(days=1), group_by="step"
        )
        return {row.key: row for row in rows}


MakeStack = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def make_stack(
    tmp_path: Path, llm_server: Any, search_server: Any
) -> AsyncIterator[MakeStack]:
    """Build pipeline stacks: LLMClient + WebSearchClient reporting to one CostTracker."""
    from analysis_pipeline import AnalysisPipeline, LocalRunStore, PipelineConfig
    from cost_tracker import CostTracker, LocalCostStore
    from llm_client import LLMClient, LLMConfig, ProviderSettings, RetryPolicy
    from web_search import SearchCache, WebSearchClient
    from web_search.services import LegislationSearchService

    opened: list[Any] = []

    async def make(
        *,
        daily_budget: Decimal | None = None,
        config: PipelineConfig | None = None,
        store: Any = None,
        telemetry: Any = None,
    ) -> Stack:
        tracker = CostTracker(
            LocalCostStore(tmp_path / "costs"),
            daily_budget=daily_budget,
            outbox_path=tmp_path / "outbox.sqlite3",
        )
        llm = LLMClient(
            cost_sink=tracker,
            config=LLMConfig(providers={"openai": ProviderSettings(base_url=llm_server.base_url)}),
            retry=RetryPolicy(sleep=_no_wait),  # three attempts, no real backoff in tests
            telemetry=telemetry,
        )
        search = WebSearchClient(
            "zai",
            cache=SearchCache(None),
            cost_sink=tracker,
            api_key="test-key",
            base_url=search_server.base_url,
            telemetry=telemetry,
        )
        opened.extend([search, llm, tracker])
        base = config or PipelineConfig()
        base.models = {"research": [ANALYST], "generate": [ANALYST], "review": [REVIEWER]}
        service = LegislationSearchService(search)
        runs = store if store is not None else LocalRunStore(tmp_path)
        if store is None:
            opened.append(runs)  # its connection has a thread of its own: close it
        pipeline = AnalysisPipeline(llm, service, store=runs, config=base)
        return Stack(pipeline, tracker, llm, search)

    yield make
    for resource in opened:
        await resource.aclose()
