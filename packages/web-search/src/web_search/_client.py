"""``WebSearchClient``: cleaned queries, fan-out, retries, cost reporting and the two-tier cache."""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from ._cache import CacheEntry, SearchCache
from ._cost import CostEstimate, CostRecord, CostSink
from ._errors import (
    BudgetExceededError,
    InvalidQueryError,
    ProviderError,
    RateLimitError,
    ResponseFormatError,
    SearchTimeoutError,
    ServerError,
    WebSearchError,
)
from ._merge import merge_results, plan_domain_groups
from ._provider import ProviderCall, SearchProvider
from ._query import SearchSpec, clean_query, normalise_domain
from ._retry import RetryPolicy
from ._select import make_provider
from ._stats import StatsKeeper
from ._stores.local import LocalSearchCache
from ._telemetry import attempt_span, end_attempt_span, resolve_tracer
from ._types import CacheStats, SearchOutcome, SearchRequest, SearchResult, normalise_recency
from ._write_behind import WriteBehind

__all__ = ["RetryPolicy", "WebSearchClient", "make_provider"]

logger = logging.getLogger(__name__)

_ZERO = Decimal(0)

SET_CONCURRENCY = 32
"""Default bound on upstream searches in flight for one ``search_many`` set."""


@functools.lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    # Building a default TLS context costs ~100 ms of CPU; one per process is enough.
    return ssl.create_default_context()


class WebSearchClient:
    """Web search with a two-tier cache, request coalescing and cost reporting.

    Args:
        provider: A ``SearchProvider``, a provider name (``zai``, ``tavily``), or None for
            ``WEB_SEARCH_PROVIDER`` (default ``zai``).
        cache: A ``SearchCache``; None means in-process plus ``LocalSearchCache()`` in the
            state directory (``$LLM_COMMON_DIR/web-search-cache``, else
            ``./.llm-common/web-search-cache``).
        cost_sink: Receives reserve/settle/release for every upstream call (e.g. cost-tracker).
        api_key: Provider API key when ``provider`` is a name (default from the environment).
        base_url: Provider API root when ``provider`` is a name.
        timeout: Seconds to wait for one upstream answer.
        retry: Retry policy for rate limits and server failures.
        telemetry: Where spans go: an ``llm_client.Telemetry`` (or anything with a
            ``tracer(scope)`` method); None: the global OpenTelemetry tracer provider when
            ``opentelemetry-api`` (the ``[otel]`` extra) is installed, else no spans.

    Example:
        >>> async with WebSearchClient("zai", api_key="...") as client:
        ...     results = await client.search("California rent cap", domains=["lao.ca.gov"])
    """

    def __init__(
        self,
        provider: str | SearchProvider | None = None,
        cache: SearchCache | None = None,
        cost_sink: CostSink[Any] | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 20.0,
        retry: RetryPolicy | None = None,
        telemetry: Any = None,
    ) -> None:
        self.provider = make_provider(provider, api_key, base_url)
        self.cache = cache if cache is not None else SearchCache(LocalSearchCache())
        self.cost_sink = cost_sink
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._tracer = resolve_tracer(telemetry)
        # aiohttp rather than httpx: httpcore scans every pooled connection for every request
        # and response close, which made a 10-bill research burst CPU-bound (bench/pipeline.py).
        self._http: aiohttp.ClientSession | None = None
        self._inflight: dict[str, asyncio.Future[tuple[CacheEntry, str]]] = {}
        self._stats = StatsKeeper(self.cache)
        self._specs: dict[tuple[Any, ...], tuple[SearchSpec, str]] = {}

    def _http_client(self) -> aiohttp.ClientSession:
        """The client's HTTP session (created on first use, inside the running loop)."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                # No pool cap: callers bound concurrency (research runs at most 32 at once).
                connector=aiohttp.TCPConnector(limit=0, ssl=_tls_context()),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        return self._http

    def __repr__(self) -> str:
        return f"WebSearchClient(provider={self.provider!r}, cache={self.cache.persistent!r})"

    async def __aenter__(self) -> WebSearchClient:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel unfinished searches, persist statistics, close HTTP and the cache."""
        for task in list(self._inflight.values()):
            task.cancel()
        await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        try:
            await self._stats.flush()
        except Exception as exc:
            # Closing must not fail (or mask the caller's exception) because the store is down.
            logger.warning("web-search stats: final flush failed (%s)", type(exc).__name__)
        finally:
            if self._http is not None:
                await self._http.close()
                self._http = None
            await self.cache.aclose()

    async def get_cache_stats(self) -> CacheStats:
        """Statistics, persisted ones included (async: it reads the persistent tier).

        Returns:
            Totals of every process sharing the persistent tier's stats namespace, or this
            client's own counts when there is no persistent tier.
        """
        return await self._stats.totals()

    def _spec(
        self, query: str, count: int, domains: Sequence[str] | None, recency: str | None
    ) -> tuple[SearchSpec, str]:
        try:
            memo = (query, count, tuple(domains) if domains else (), recency)
            known = self._specs.get(memo)
        except TypeError:
            raise InvalidQueryError(
                "query, count, domains and recency must be plain values"
            ) from None
        if known is not None:
            return known
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 50:
            raise InvalidQueryError(f"count must be an integer from 1 to 50, not {count!r}")
        if isinstance(domains, str):
            raise InvalidQueryError("domains must be a list of domains, not one string")
        cleaned = clean_query(query)
        wanted = sorted({normalise_domain(d) for d in (*(domains or ()), *cleaned.domains)})
        spec = SearchSpec(
            cleaned, count, tuple(wanted), normalise_recency(recency), self.provider.cache_namespace
        )
        if len(self._specs) > 4096:
            self._specs.clear()
        # Memoised with its key: the in-process hit path then costs two dict lookups.
        known = self._specs[memo] = (spec, spec.key)
        return known

    async def search(
        self,
        query: str,
        count: int = 10,
        domains: Sequence[str] | None = None,
        recency: Literal["1d", "1w", "1m", "1y"] | str | None = None,
        *,
        step: str = "research",
    ) -> list[SearchResult]:
        """Search the web (cache first).

        Args:
            query: Free text; ``site:example.gov`` operators become domain filters and the text
                sent is cut to 70 characters on a word boundary (the whole text keys the cache).
            count: Results wanted, 1-50 (per merged answer).
            domains: Restrict results to these domains; ``*.gov``-style wildcards are applied
                as a filter on result links. Several domains mean one call per domain for z.ai.
            recency: ``1d``, ``1w``, ``1m``, ``1y`` (or z.ai's ``oneDay``...), None for no limit.
            step: Application step reported to the cost sink.

        Returns:
            Results ranked from 1; an empty list is a valid answer.

        Raises:
            InvalidQueryError: Bad arguments.
            RateLimitError: Still rate limited after the retries.
            InsufficientBalanceError: The account is out of money (not retried).
            AuthenticationError: Bad API key.
            BadRequestError: The provider rejected the parameters.
            SearchTimeoutError: No answer within ``timeout``.
        """
        spec, key = self._spec(query, count, domains, recency)
        entry = self.cache.memory.get(key, self.cache.clock())
        if entry is not None:
            self._stats.hit("l1", entry.cost)
            return list(entry.results)
        return (await self._lookup(spec, key, step)).results

    async def search_detailed(
        self,
        query: str,
        count: int = 10,
        domains: Sequence[str] | None = None,
        recency: Literal["1d", "1w", "1m", "1y"] | str | None = None,
        *,
        step: str = "research",
    ) -> SearchOutcome:
        """Like ``search``, also telling where the answer came from and what it cost or saved.

        Returns:
            A ``SearchOutcome`` (results, source ``l1``/``l2``/``coalesced``/``upstream``, cost
            spent by this call, dollars saved by it).
        """
        spec, key = self._spec(query, count, domains, recency)
        return await self._lookup(spec, key, step)

    async def search_many(
        self,
        requests: Sequence[SearchRequest],
        *,
        step: str = "research",
        concurrency: int = SET_CONCURRENCY,
    ) -> list[SearchOutcome | WebSearchError]:
        """Run a set of searches with one persistent read and write-behind persistent writes.

        The persistent tier is read once for every key the in-process tier lacks. Each paid
        call is reserved before it is made and settled as soon as it is answered, and each new
        answer is written to the persistent tier as soon as it arrives, so a process killed
        mid-set loses neither the record of a call it paid for nor the answer (a resume finds
        it in the cache instead of paying again). Writes that arrive while one is running go
        together in the next one, so a set whose answers arrive close together still makes few
        statements (a batching sink such as cost-tracker's does the same for the records).
        Identical searches in the set, or already in flight in this process, are made once.

        Args:
            requests: The searches.
            step: Application step reported to the cost sink.
            concurrency: Upstream searches in flight at once (each may fan out per domain).

        Returns:
            One entry per request, in order: its ``SearchOutcome``, or the ``WebSearchError``
            it failed with (``InvalidQueryError``, provider errors, ``BudgetExceededError``).
        """
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        now = self.cache.clock()
        answers: list[SearchOutcome | WebSearchError | None] = [None] * len(requests)
        wanted: dict[str, tuple[SearchSpec, list[int]]] = {}
        joined: list[tuple[int, asyncio.Future[tuple[CacheEntry, str]]]] = []
        for index, request in enumerate(requests):
            try:
                spec, key = self._spec(
                    request.query, request.count, request.domains, request.recency
                )
            except InvalidQueryError as exc:
                answers[index] = exc
                continue
            entry = self.cache.memory.get(key, now)
            if entry is not None:
                self._stats.hit("l1", entry.cost)
                answers[index] = SearchOutcome(list(entry.results), "l1", _ZERO, entry.cost)
            elif key in wanted:
                wanted[key][1].append(index)
            elif key in self._inflight:
                joined.append((index, self._inflight[key]))
            else:
                wanted[key] = (spec, [index])
        loop = asyncio.get_running_loop()
        futures = {key: loop.create_future() for key in wanted}
        for key, future in futures.items():
            # Registered as in flight so concurrent searches of the same key join this set.
            self._inflight[key] = future
            future.add_done_callback(functools.partial(self._settled, key))
        try:
            specs = {key: spec for key, (spec, _) in wanted.items()}
            filled = await self._fill_set(specs, now, step, concurrency)
        except BaseException as exc:
            for key, future in futures.items():
                self._resolve(key, future, exc)
            raise
        for key, (_, indexes) in wanted.items():
            outcome = filled[key]
            self._resolve(key, futures[key], outcome)
            if isinstance(outcome, WebSearchError):
                for index in indexes:
                    answers[index] = outcome
                continue
            entry, origin = outcome
            first, *repeats = indexes
            if origin == "l2":
                answers[first] = SearchOutcome(list(entry.results), "l2", _ZERO, entry.cost)
            else:
                answers[first] = SearchOutcome(
                    list(entry.results), "upstream", entry.cost, _ZERO, entry.calls
                )
            for index in repeats:
                self._stats.hit("coalesced", entry.cost)
                answers[index] = SearchOutcome(list(entry.results), "coalesced", _ZERO, entry.cost)
        for index, future in joined:
            try:
                shared, _ = await asyncio.shield(future)
            except WebSearchError as exc:
                answers[index] = exc
                continue
            self._stats.hit("coalesced", shared.cost)
            answers[index] = SearchOutcome(list(shared.results), "coalesced", _ZERO, shared.cost)
        return [a for a in answers if a is not None]

    def _resolve(
        self,
        key: str,
        future: asyncio.Future[tuple[CacheEntry, str]],
        outcome: tuple[CacheEntry, str] | BaseException,
    ) -> None:
        """Answer the searches that joined a set's key, and mark the key no longer in flight."""
        if self._inflight.get(key) is future:
            del self._inflight[key]
        if future.done():
            return
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    async def _fill_set(
        self, specs: dict[str, SearchSpec], now: datetime, step: str, concurrency: int
    ) -> dict[str, tuple[CacheEntry, str] | WebSearchError]:
        """One persistent read, then the misses upstream, each written as it is answered."""
        filled: dict[str, tuple[CacheEntry, str] | WebSearchError] = {}
        for key, entry in (await self.cache.persistent_get_many(list(specs), now)).items():
            self.cache.promote(key, entry, specs[key].recency, now)
            self._stats.hit("l2", entry.cost)
            filled[key] = (entry, "l2")
        gate = asyncio.Semaphore(concurrency)
        writes = WriteBehind(self.cache.store_many)

        async def one(key: str, spec: SearchSpec) -> None:
            async with gate:
                try:
                    entry = await self._upstream(spec, step)
                except WebSearchError as exc:
                    filled[key] = exc
                    return
            filled[key] = (entry, "upstream")
            writes.add((key, entry, spec.recency, spec.query.full, self.provider.name))

        misses = [(key, spec) for key, spec in specs.items() if key not in filled]
        try:
            # Every search finishes before the set returns: a call sent may be billed.
            done = await asyncio.gather(*(one(k, s) for k, s in misses), return_exceptions=True)
        finally:
            await writes.drain()
        for failure in done:
            if isinstance(failure, BaseException):
                raise failure
        return filled

    async def _lookup(self, spec: SearchSpec, key: str, step: str) -> SearchOutcome:
        now = self.cache.clock()
        entry = self.cache.memory.get(key, now)
        if entry is not None:
            self._stats.hit("l1", entry.cost)
            return SearchOutcome(list(entry.results), "l1", _ZERO, entry.cost)
        task = self._inflight.get(key)
        if task is not None:
            shared, _ = await asyncio.shield(task)
            self._stats.hit("coalesced", shared.cost)
            return SearchOutcome(list(shared.results), "coalesced", _ZERO, shared.cost)
        task = asyncio.get_running_loop().create_task(self._fill(spec, key, now, step))
        self._inflight[key] = task
        task.add_done_callback(lambda done: self._settled(key, done))
        filled, origin = await asyncio.shield(task)
        if origin == "l2":
            return SearchOutcome(list(filled.results), "l2", _ZERO, filled.cost)
        return SearchOutcome(list(filled.results), "upstream", filled.cost, _ZERO, filled.calls)

    def _settled(self, key: str, task: asyncio.Future[tuple[CacheEntry, str]]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # consumed here so an unawaited failure is not logged as lost

    async def _fill(
        self, spec: SearchSpec, key: str, now: datetime, step: str
    ) -> tuple[CacheEntry, str]:
        entry = await self.cache.persistent_get(key, now)
        if entry is not None:
            self.cache.promote(key, entry, spec.recency, now)
            self._stats.hit("l2", entry.cost)
            return entry, "l2"
        entry = await self._upstream(spec, step)
        await self.cache.store(key, entry, spec.recency, spec.query.full, self.provider.name)
        return entry, "upstream"

    async def _upstream(self, spec: SearchSpec, step: str) -> CacheEntry:
        """Pay for one search: one call per domain group, merged into a new cache entry."""
        groups = plan_domain_groups(spec.domains, self.provider.max_domains_per_call)
        calls = [
            ProviderCall(spec.query.sent, spec.count, group, spec.recency, f"ws-{uuid.uuid4().hex}")
            for group in groups
        ]
        if len(calls) == 1:
            answers = [(groups[0], await self._call(calls[0], step))]
        else:
            # Siblings of a failed call run to the end rather than being cancelled: a call
            # already sent may be billed, and only a finished call can be settled as such.
            found = await asyncio.gather(
                *(self._call(call, step) for call in calls), return_exceptions=True
            )
            answers = []
            for group, outcome in zip(groups, found, strict=True):
                if isinstance(outcome, BaseException):
                    raise outcome
                answers.append((group, outcome))
        results = merge_results(answers, spec.domains, spec.count)
        # Only an upstream "nothing found" is transient; post-filtering everything away is not.
        upstream_empty = not any(found for _, found in answers)
        cost = self.provider.price_per_call * len(calls)
        entry = self.cache.new_entry(
            results,
            cost,
            len(calls),
            spec.recency,
            self.cache.clock(),
            upstream_empty=upstream_empty,
        )
        self._stats.miss(len(calls), cost)
        return entry

    def _retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, RateLimitError):
            return exc.retry_after is None or exc.retry_after <= self.retry.max_retry_after
        return isinstance(exc, ServerError)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        logger.warning(
            "%s: %s on attempt %d, retrying in %.2f s",
            self.provider.name,
            type(exc).__name__,
            state.attempt_number,
            state.next_action.sleep if state.next_action else 0.0,
        )

    async def _call(self, call: ProviderCall, step: str) -> list[SearchResult]:
        # Nearly every call succeeds at once, so the first attempt runs before tenacity's
        # per-call machinery is built (it cost more CPU than the request's own bookkeeping).
        # A failure is replayed as tenacity's attempt 1: the retry decision, the wait and the
        # log line are the same as if tenacity had made that attempt itself.
        try:
            return await self._attempt(call, step, 1)
        except Exception as exc:
            first_failure = exc
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retry.max_attempts),
            wait=self.retry.wait,
            retry=retry_if_exception(self._retryable),
            before_sleep=self._log_retry,
            reraise=True,
        )
        async for state in retrying:
            with state:
                attempt = state.retry_state.attempt_number
                if attempt == 1:
                    raise first_failure
                return await self._attempt(call, step, attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, call: ProviderCall, step: str, attempt: int) -> list[SearchResult]:
        provider = self.provider
        price = provider.price_per_call
        estimate = CostEstimate(
            f"{call.request_id}-{attempt}", provider.name, provider.engine, step, price
        )
        sink = self.cost_sink
        reservation = await _reserve(sink, estimate) if sink is not None else None
        span = (
            attempt_span(self._tracer, provider.name, provider.engine, attempt, step)
            if self._tracer is not None
            else None
        )
        started = time.perf_counter()
        billed = False
        try:
            request = provider.build_request(call)
            try:
                async with self._http_client().request(
                    request.method, request.url, headers=request.headers, json=request.json
                ) as response:
                    status = response.status
                    headers = {k.lower(): v for k, v in response.headers.items()}
                    content = await response.read()
            except TimeoutError:
                raise SearchTimeoutError(
                    f"{provider.name}: no answer within {self.timeout:g} s", provider=provider.name
                ) from None
            except aiohttp.ClientError as exc:
                raise ServerError(
                    f"{provider.name}: connection failed ({type(exc).__name__})",
                    provider=provider.name,
                ) from None
            billed = status < 400
            results = _parse(provider, call, status, headers, content)
        except BaseException as exc:
            if span is not None:
                kept = billed and isinstance(exc, ResponseFormatError)
                end_attempt_span(span, billed=price if kept else None, results=0, error=exc)
            if sink is not None:
                if billed and isinstance(exc, ResponseFormatError):
                    await sink.settle(
                        reservation, self._record(estimate, started, attempt, call, exc)
                    )
                else:
                    await sink.release(reservation)
            if isinstance(exc, ProviderError):
                logger.info("%s: %s on attempt %d", provider.name, type(exc).__name__, attempt)
            raise
        if span is not None:
            end_attempt_span(span, billed=price, results=len(results), error=None)
        if sink is not None:
            record = self._record(estimate, started, attempt, call, None, len(results))
            await sink.settle(reservation, record)
        return results

    def _record(
        self,
        estimate: CostEstimate,
        started: float,
        attempt: int,
        call: ProviderCall,
        error: BaseException | None,
        results: int = 0,
    ) -> CostRecord:
        return CostRecord(
            idempotency_id=estimate.idempotency_id,
            provider=estimate.provider,
            model=estimate.model,
            step=estimate.step,
            cost=estimate.amount,
            success=error is None,
            error=type(error).__name__ if error else None,
            latency_ms=(time.perf_counter() - started) * 1000,
            metadata={
                "kind": "web_search",
                "request_id": call.request_id,
                "domains": list(call.domains),
                "recency": call.recency,
                "attempt": attempt,
                "results": results,
            },
        )


async def _reserve(sink: CostSink[Any], estimate: CostEstimate) -> Any:
    """``sink.reserve``, with a budget refusal re-raised as this package's own error."""
    try:
        return await sink.reserve(estimate)
    except Exception as exc:
        if _is_budget_refusal(exc):
            raise BudgetExceededError(str(exc) or type(exc).__name__) from exc
        raise


def _is_budget_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` or an exception in its cause chain is marked ``is_budget_refusal``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if getattr(type(current), "is_budget_refusal", False):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _parse(
    provider: SearchProvider, call: ProviderCall, status: int, headers: dict[str, str], body: bytes
) -> list[SearchResult]:
    """The provider's reading of an answer; anything but a typed error is a format error."""
    try:
        return provider.parse_response(call, status, headers, body)
    except ProviderError:
        raise
    except Exception as exc:
        # A provider (ours or an app's) tripping over an unforeseen body must not escape as a
        # raw KeyError or IndexError: the answer was not the shape it expected.
        raise ResponseFormatError(
            f"{provider.name}: unexpected response shape ({type(exc).__name__})",
            provider=provider.name,
            status_code=status,
        ) from exc
