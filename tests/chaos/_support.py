"""Machinery of the chaos suite: fault plans, the served ledger, the wired stack, resource counts.

Loaded by ``conftest.py`` (as the ``chaos`` fixture) and by the worker subprocess
(``_worker.py``) from its file path, so both processes build the stack the same way.

Faults are injected at the network edge only, through the loopback servers' public scripting
API: a handler on ``FakeLLMServer`` and a scripted reply queue on ``FakeZaiSearchServer``. Both
record what they *served* (every answer that carries usage, every billed search) so the cost
ledger can be checked against it to the Decimal, priced with llm-client's public pricing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "../shared/data/bills"  # read where the e2e test reads them; never copied
SCALE = max(1, int(os.environ.get("CHAOS_SCALE", "1") or "1"))
SEED = int(os.environ.get("CHAOS_SEED", "1717"))
PROJECT = "chaos"
SEARCH_MODEL = "search-prime"  # web-search records z.ai searches under its engine name

# Chains: z.ai first for research/generate so the 1113 burst forces fallbacks; review differs.
MODELS: dict[str, list[str]] = {
    "research": ["zai/glm-4.6", "openai/gpt-4o-mini"],
    "condense": ["openai/gpt-4o-mini", "zai/glm-4.6"],
    "generate": ["zai/glm-4.6", "openai/gpt-4o-mini"],
    "review": ["openai/gpt-4.1-mini", "openai/gpt-4o"],
    "refine": ["openai/gpt-4o-mini", "zai/glm-4.6"],
}
WORKER_REVIEW = "gpt-4.1-nano"  # the doomed worker's reviewer: its requests are held


def bills() -> list[tuple[str, str]]:
    """(bill id, jurisdiction) of the twelve real bills."""
    manifest = json.loads((DATA / "manifest.json").read_text())
    return [(b["id"], b["jurisdiction"]) for b in manifest]


def bill_text(bill_id: str) -> str:
    return (DATA / f"{bill_id}.txt").read_text(encoding="utf-8")


async def using(resource: Any, call: Any) -> Any:
    """``await call(resource)``, then ``await resource.aclose()`` whatever happened."""
    try:
        return await call(resource)
    finally:
        await resource.aclose()


# -- the LLM side ---------------------------------------------------------------------------


@dataclass
class Served:
    """One answer the fake provider served with usage: the provider charged for it."""

    model: str  # as llm-client names it: "zai/glm-4.6", "openai/gpt-4o-mini"
    prompt_tokens: int
    completion_tokens: int
    kind: str
    task: str = ""  # the pipeline's "Task:" tag (generate-analysis, ...)
    bill: str = ""  # the "Bill:" line of the prompt (the run's bill id)

    def cost(self) -> Decimal:
        from llm_client import Usage, cost_for

        usage = Usage(prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens)
        cost, source = cost_for(usage, self.model)
        assert cost is not None, f"{self.model} is unpriced ({source})"
        return cost


@dataclass
class LLMChaos:
    """A ``FakeLLMServer`` handler that answers like the offline analyst, with seeded faults.

    Rates are per request; ``schedule`` forces a fault kind at the n-th request after
    ``enabled`` (so a small run still meets every kind), and the z.ai 1113 burst answers the
    ``burst_len`` z.ai requests from the ``burst_at``-th one. Every 200 answer carries explicit
    usage and is appended to ``served``; errors, hangs (until the client's timeout) and drops
    carry none.
    """

    seed: int = SEED
    rates: tuple[float, float, float, float] = (0.08, 0.03, 0.04, 0.06)  # 5xx, hang, 429, bad
    retry_after: float = 0.2
    burst_at: int = 6
    burst_len: int = 4
    schedule: dict[int, str] = field(
        default_factory=lambda: {
            1: "llm_5xx",
            2: "llm_hang",
            3: "llm_429",
            4: "malformed_json",
            5: "malformed_shape",
        }
    )
    held: set[str] = field(default_factory=set)  # models whose requests hang until released
    faults: Counter[str] = field(default_factory=Counter)
    served: list[Served] = field(default_factory=list)
    requests: int = 0
    held_now: int = 0
    enabled: bool = True

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._n = 0
        self._zai = 0

    def _pick(self, zai: bool) -> str:
        """The fault for this request ("" for none); call with the lock held."""
        n, self._n = self._n, self._n + 1
        draw = self._rng.random()
        if zai:
            zai_index, self._zai = self._zai, self._zai + 1
            if self.burst_at <= zai_index < self.burst_at + self.burst_len:
                return "llm_zai_1113"
        if n in self.schedule:
            return self.schedule[n]
        p_5xx, p_hang, p_429, p_malformed = self.rates
        for kind, rate in (
            ("llm_5xx", p_5xx),
            ("llm_hang", p_hang),
            ("llm_429", p_429),
            ("malformed_json", p_malformed / 2),
            ("malformed_shape", p_malformed / 2),
        ):
            if draw < rate:
                return kind
            draw -= rate
        return ""

    def __call__(self, request: Any) -> Any:
        from analysis_pipeline.testing import offline_handler
        from llm_client.testing import Reply

        zai = "/api/paas/v4" in request.path
        model = f"{'zai' if zai else 'openai'}/{request.model}"
        with self._lock:
            self.requests += 1
            if request.model in self.held:
                self.held_now += 1
                return Reply.hang()
            fault = self._pick(zai) if self.enabled else ""
            if fault:
                self.faults["llm_malformed" if "malformed" in fault else fault] += 1
            status = (500, 502, 503)[self._n % 3]
        if fault == "llm_zai_1113":
            return Reply.zai_error(1113)
        if fault == "llm_5xx":
            return Reply.error(status)
        if fault == "llm_hang":
            return Reply.hang()
        if fault == "llm_429":
            return Reply.error(429, retry_after=self.retry_after)
        if fault == "malformed_json":  # invalid JSON where a structured answer is due: billed
            return self._charge(request, model, Reply.invalid_json(), "malformed_json")
        if fault == "malformed_shape":
            return self._wrong_shape(request, model)
        answer = offline_handler(request) or Reply.auto()
        return self._charge(request, model, answer, "ok")

    def _charge(self, request: Any, model: str, reply: Any, kind: str) -> Any:
        prompt = 1 + len(json.dumps(request.messages)) // 4
        completion = 40 + len(request.messages) * 7
        with self._lock:
            self.served.append(Served(model, prompt, completion, kind, *_tags(request)))
        return reply.with_usage(prompt_tokens=prompt, completion_tokens=completion)

    def _wrong_shape(self, request: Any, model: str) -> Any:
        """A completion with no choices that still reports usage: the provider billed it."""
        from llm_client.testing import Reply

        prompt = 1 + len(json.dumps(request.messages)) // 4
        with self._lock:
            self.served.append(Served(model, prompt, 0, "malformed_shape", *_tags(request)))
        body = {
            "id": "chatcmpl-chaos",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [],
            "usage": {"prompt_tokens": prompt, "completion_tokens": 0, "total_tokens": prompt},
        }
        return Reply.error(200, body)

    def served_cost(self) -> Decimal:
        with self._lock:
            return sum((s.cost() for s in self.served), Decimal(0))


def _tags(request: Any) -> tuple[str, str]:
    from analysis_pipeline.testing import task_of

    bill = _BILL.search("\n".join(str(m.get("content") or "") for m in request.messages))
    return task_of(request.messages), bill.group(1) if bill else ""


_BILL = re.compile(r"^Bill: (\S+)", re.M)


# -- the search side ------------------------------------------------------------------------


@dataclass
class SearchChaos:
    """A seeded reply queue for ``FakeZaiSearchServer``: the i-th request gets ``plan[i]``."""

    seed: int = SEED
    length: int = 6000
    rates: tuple[float, float, float, float] = (0.05, 0.01, 0.03, 0.02)  # 5xx, hang, 429, bad
    burst_at: int = 150
    burst_len: int = 5
    plan: list[tuple[str, Any]] = field(default_factory=list)

    def install(self, server: Any) -> None:
        from web_search.testing import Reply

        rng = random.Random(self.seed + 1)
        p_5xx, p_hang, p_429, p_malformed = self.rates
        for i in range(self.length):
            draw = rng.random()
            if self.burst_at <= i < self.burst_at + self.burst_len:
                self.plan.append(("search_zai_1113", Reply.insufficient_balance()))
            elif draw < p_5xx:
                self.plan.append(("search_5xx", Reply.server_error(rng.choice((500, 503)))))
            elif (draw := draw - p_5xx) < p_hang:
                self.plan.append(("search_hang", Reply.hang_forever()))
            elif (draw := draw - p_hang) < p_429:
                self.plan.append(("search_429", Reply.rate_limited(retry_after=0.2)))
            elif draw - p_429 < p_malformed:
                body = b'{"id": "x", "search_result": "not a list"'
                self.plan.append(("search_malformed", Reply.raw(200, body)))
            else:
                self.plan.append(("ok", Reply.ok()))
        server.script(*(reply for _, reply in self.plan))

    def faults(self, calls: int) -> Counter[str]:
        return Counter(kind for kind, _ in self.plan[:calls] if kind != "ok")

    def billed(self, calls: int) -> int:
        """Searches the provider charged for: answers with status < 400 that were delivered."""
        seen = self.plan[:calls]
        extra = max(0, calls - len(self.plan))  # past the plan: generated results
        return extra + sum(kind in ("ok", "search_malformed") for kind, _ in seen)


# -- the stack ------------------------------------------------------------------------------


def llm_retry() -> Any:
    """llm-client's RetryPolicy with short real waits."""
    from llm_client import RetryPolicy

    return RetryPolicy(initial_wait=0.02, max_wait=2.0, jitter=0.02, max_retry_after=5.0)


def search_retry() -> Any:
    from web_search import RetryPolicy

    return RetryPolicy(initial_wait=0.02, max_wait=0.2, jitter=0.02, max_retry_after=5.0)


@dataclass
class StackConfig:
    db_url: str
    llm_url: str  # FakeLLMServer.url
    search_url: str  # FakeZaiSearchServer.base_url
    outbox: str
    daily_budget: str = "50"
    llm_timeout: float = 1.0
    # The stores' circuit breakers (30 s by default) would turn a 1.5 s cut into 30 s of
    # refusals; a short one lets the suite see the recovery.
    breaker_interval: float = 1.0
    reservation_ttl: float = 3600.0
    llm_key: str = "sk-chaos-openai-key"
    zai_key: str = "zai-chaos-key"
    search_key: str = "zai-chaos-search-key"


@dataclass
class ChaosStack:
    """What ``open_stack`` wired: the run store and search cache first, then their users."""

    runs: Any
    cache: Any
    tracker: Any
    llm: Any
    search: Any
    pipeline: Any


@contextlib.asynccontextmanager
async def open_stack(cfg: StackConfig) -> AsyncIterator[ChaosStack]:
    """Pipeline + LLMClient + WebSearchClient + CostTracker on PostgreSQL, all on loopback."""
    from analysis_pipeline import AnalysisPipeline, PipelineConfig, PostgresRunStore
    from cost_tracker import CostTracker, PostgresCostStore
    from llm_client import LLMClient, LLMConfig, ProviderSettings
    from web_search import PostgresSearchCache, SearchCache, WebSearchClient
    from web_search.services import LegislationSearchService

    tracker = CostTracker(
        PostgresCostStore(cfg.db_url, max_size=6, breaker_interval=cfg.breaker_interval),
        daily_budget=cfg.daily_budget,
        project=PROJECT,
        outbox_path=cfg.outbox,
        retry_interval=0.2,
        reservation_ttl=cfg.reservation_ttl,
        heartbeat_interval=0.5,  # a dead holder's holds are given back after 3 s, not 15
        holder_timeout=3.0,
    )
    config = LLMConfig(
        providers={
            "openai": ProviderSettings(base_url=f"{cfg.llm_url}/v1", api_key=cfg.llm_key),
            "zai": ProviderSettings(base_url=f"{cfg.llm_url}/api/paas/v4", api_key=cfg.zai_key),
        },
        default_timeout=cfg.llm_timeout,
        max_validation_retries=2,
    )
    llm = LLMClient(cost_sink=tracker, config=config, retry=llm_retry())
    cache = PostgresSearchCache(cfg.db_url, max_size=4, breaker_interval=cfg.breaker_interval)
    search = WebSearchClient(
        "zai",
        cache=SearchCache(cache),
        cost_sink=tracker,
        api_key=cfg.search_key,
        base_url=cfg.search_url,
        timeout=1.0,
        retry=search_retry(),
    )
    runs = PostgresRunStore(
        cfg.db_url, max_size=4, connect_timeout=3.0, breaker_interval=cfg.breaker_interval
    )
    # A short lease, so a killed worker's runs are taken over within seconds; the journal of
    # paid-but-unstored steps lives beside the outboxes, shared with the worker process.
    pipeline_config = PipelineConfig(
        models=MODELS,
        search_concurrency=8,
        heartbeat_interval=0.5,
        lease_timeout=4.0,
        journal_dir=Path(cfg.outbox).parent / "pipeline-journal",
    )
    pipeline = AnalysisPipeline(
        llm, LegislationSearchService(search), store=runs, config=pipeline_config
    )
    await tracker.__aenter__()
    try:
        yield ChaosStack(runs, cache, tracker, llm, search, pipeline)
    finally:
        for closing in (search.aclose, llm.aclose, runs.aclose):
            with contextlib.suppress(Exception):
                await closing()
        await tracker.aclose()


# -- resources ------------------------------------------------------------------------------


def open_fds() -> tuple[int, int]:
    """(descriptors, sockets) open in this process."""
    fds = sockets = 0
    for name in os.listdir("/proc/self/fd"):
        fds += 1
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                sockets += 1
    return fds, sockets


def worker_threads() -> int:
    """Threads other than the event loop's default executor's (a bounded pool, reused)."""
    return sum(not t.name.startswith("asyncio_") for t in threading.enumerate())


@dataclass
class Peaks:
    sockets: int = 0
    tasks: int = 0
    threads: int = 0


async def sample_peaks(peaks: Peaks, stop: asyncio.Event, every: float = 0.05) -> None:
    """Record the peak sockets, tasks and threads until ``stop`` is set."""
    while not stop.is_set():
        peaks.sockets = max(peaks.sockets, open_fds()[1])
        peaks.tasks = max(peaks.tasks, len(asyncio.all_tasks()))
        peaks.threads = max(peaks.threads, threading.active_count())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def poll(predicate: Any, deadline: float, what: str, every: float = 0.05) -> Any:
    """Await ``predicate()`` (sync or async) until truthy; fail after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > end:
            raise TimeoutError(f"gave up waiting for {what} after {deadline:g} s")
        await asyncio.sleep(every)
