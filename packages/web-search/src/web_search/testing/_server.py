"""A real HTTP server on 127.0.0.1 that answers like z.ai's (and Tavily's) search API.

It runs its own asyncio loop in a background thread, so it serves any number of client event
loops (and plain threads) at once; scripted latency is an ``asyncio.sleep`` on that loop and
never delays other requests. Standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Literal, TypeVar

from ._replies import RecordedRequest, Reply, generate_results, invalid_request, normalise_query

__all__ = ["FakeZaiSearchServer"]

ZAI_PATH = "/api/paas/v4/web_search"
TAVILY_PATH = "/search"
STATS_PATH = "/_fake/stats"
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
}

_T = TypeVar("_T")
Rule = Reply | Callable[[RecordedRequest], Reply | None]


class FakeZaiSearchServer:
    """Loopback z.ai-compatible web search server (plus a Tavily-compatible ``/search``).

    Use as a context manager (sync or async); point a provider at ``base_url`` (z.ai) or
    ``tavily_base_url``. By default every search answers with results generated
    deterministically from the query and domain filter; ``script`` queues replies for the next
    requests and ``on_query`` sets a standing reply for one query.

    Args:
        latency: Default seconds before each answer.
        api_key: When set, requests must carry ``Authorization: Bearer <api_key>`` or get 401.
        seed: Changes every generated link (two servers with one seed answer alike).

    Example:
        >>> with FakeZaiSearchServer() as server:
        ...     provider = ZaiSearchProvider(api_key="test", base_url=server.base_url)
    """

    def __init__(
        self, *, latency: float = 0.0, api_key: str | None = None, seed: str = "fake"
    ) -> None:
        self.latency = latency
        self.seed = seed
        self._api_key = api_key
        self._lock = threading.Condition()
        self._queue: deque[Reply] = deque()
        self._rules: dict[str, Rule] = {}
        self._requests: list[RecordedRequest] = []
        self._per_query: Counter[str] = Counter()
        self._in_flight = 0
        self.max_in_flight = 0
        """Most requests the server was answering at the same moment."""
        self.served = 0
        """Successful answers written to a client still connected: what z.ai would bill (a
        client that went away while its answer was pending is not served)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._release: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeZaiSearchServer:
        """Start serving on a random free port (returns once it accepts connections)."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="fake-zai", daemon=True
        )
        self._thread.start()
        ready.wait()
        return self

    def stop(self) -> None:
        """Stop serving, dropping hung requests."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(self._shutdown)
        thread.join()
        self._thread = self._loop = None

    def __enter__(self) -> FakeZaiSearchServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeZaiSearchServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    @property
    def base_url(self) -> str:
        """z.ai API root to pass as ``base_url`` (``.../api/paas/v4``)."""
        return f"http://127.0.0.1:{self.port}/api/paas/v4"

    @property
    def url(self) -> str:
        """Full z.ai web search endpoint."""
        return self.base_url + "/web_search"

    @property
    def tavily_base_url(self) -> str:
        """Tavily API root to pass as ``base_url`` (``/search`` is appended)."""
        return f"http://127.0.0.1:{self.port}"

    # -- scripting and inspection ------------------------------------------------------------
    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order (then back to generated results)."""
        with self._lock:
            self._queue.extend(replies)

    def on_query(self, query: str, reply: Rule) -> None:
        """Answer every request for ``query`` (normalised) with ``reply`` (or its callable's)."""
        with self._lock:
            self._rules[normalise_query(query)] = reply

    def release_hangs(self) -> None:
        """Let hung requests finish (with generated results)."""
        if self._loop is not None and self._release is not None:
            self._loop.call_soon_threadsafe(self._release_now)

    def _release_now(self) -> None:
        # Swap in a fresh event so requests that hang after this release hang again.
        released, self._release = self._release, asyncio.Event()
        if released is not None:
            released.set()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (authorization redacted)."""
        with self._lock:
            return list(self._requests)

    @property
    def calls(self) -> int:
        """Upstream calls received on the search endpoints (errors included)."""
        with self._lock:
            return len(self._requests)

    def calls_for(self, query: str) -> int:
        """Upstream calls received for one query (case- and space-folded)."""
        with self._lock:
            return self._per_query[normalise_query(query)]

    def stats(self) -> dict[str, int]:
        """Counters, also served as JSON at ``GET /_fake/stats`` for other processes.

        ``distinct_calls`` counts different request bodies (``request_id`` ignored): equal to
        ``calls`` when no paid call was ever repeated.
        """
        with self._lock:
            bodies = {
                json.dumps({k: v for k, v in r.json.items() if k != "request_id"}, sort_keys=True)
                if isinstance(r.json, dict)
                else repr(r.json)
                for r in self._requests
            }
            return {
                "calls": len(self._requests),
                "distinct_calls": len(bodies),
                "max_in_flight": self.max_in_flight,
                "served": self.served,
            }

    def reset(self) -> None:
        """Forget recorded requests, queued replies and rules."""
        with self._lock:
            self._requests.clear()
            self._per_query.clear()
            self.max_in_flight = self._in_flight
            self.served = 0
            self._queue.clear()
            self._rules.clear()

    async def wait_for_calls(self, n: int, within: float = 10.0) -> None:
        """Wait until ``n`` calls have arrived (raises ``TimeoutError`` after ``within`` s)."""

        def wait() -> bool:
            with self._lock:
                return self._lock.wait_for(lambda: len(self._requests) >= n, within)

        if not await asyncio.to_thread(wait):
            raise TimeoutError(f"{self.calls} calls arrived, expected {n}")

    # -- the server --------------------------------------------------------------------------
    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._release = asyncio.Event()
        self._server = loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=1024)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _shutdown(self) -> None:
        assert self._loop is not None
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()

        async def finish() -> None:
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._loop.stop()  # type: ignore[union-attr]

        self._loop.create_task(finish())

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (raw := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = raw.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                answered = await _unless_gone(
                    reader, self._handle(method, path.split("?")[0], headers, body)
                )
                if answered is None:
                    return  # the client went away (its timeout, or it died) before the answer
                status, out_headers, payload = answered
                reason = _REASONS.get(status, "Error")
                head = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json"]
                head += [f"{k}: {v}" for k, v in out_headers.items()]
                head.append(f"Content-Length: {len(payload)}")
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
                await writer.drain()
                if status == 200 and path.split("?")[0] in (ZAI_PATH, TAVILY_PATH):
                    self.served += 1
                if headers.get("connection", "").lower() == "close":
                    return
        except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        api: Literal["zai", "tavily"]
        if method == "GET" and path == STATS_PATH:
            return 200, {}, json.dumps(self.stats()).encode()
        if method == "POST" and path == ZAI_PATH:
            api = "zai"
        elif method == "POST" and path == TAVILY_PATH:
            api = "tavily"
        else:
            return 404, {}, b'{"error": {"code": "1222", "message": "API does not exist"}}'
        try:
            data: Any = json.loads(body)
        except ValueError:
            data = None
        query = ""
        if isinstance(data, dict):
            query = str(data.get("search_query" if api == "zai" else "query") or "")
        token = headers.get("authorization", "")
        record = RecordedRequest(
            method=method,
            path=path,
            headers={k: ("Bearer ***" if k == "authorization" else v) for k, v in headers.items()},
            json=data,
            query=normalise_query(query),
            bearer_ok=self._api_key is None or token == f"Bearer {self._api_key}",
        )
        with self._lock:
            self._requests.append(record)
            self._per_query[record.query] += 1
            self._lock.notify_all()
            rule = self._rules.get(record.query)
            reply = self._queue.popleft() if self._queue else None
        self._in_flight += 1  # only touched on the server loop: no lock needed
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            return await self._respond(api, data, record, reply, rule)
        finally:
            self._in_flight -= 1

    async def _respond(
        self,
        api: Literal["zai", "tavily"],
        data: Any,
        record: RecordedRequest,
        reply: Reply | None,
        rule: Rule | None,
    ) -> tuple[int, dict[str, str], bytes]:
        if reply is None and rule is not None:
            reply = rule(record) if callable(rule) else rule
        reply = reply or Reply.ok()
        if not record.bearer_ok:
            reply = Reply.unauthorized()
        latency = self.latency if reply.latency is None else reply.latency
        if latency > 0:
            await asyncio.sleep(latency)
        if reply.hang:
            release = self._release
            assert release is not None
            await release.wait()
        request_id = (
            str(data.get("request_id") or uuid.uuid4().hex) if isinstance(data, dict) else ""
        )
        if reply.kind != "ok":
            return reply.render(api, request_id)
        problem = invalid_request(api, data)
        if problem:
            return Reply.raw(400, json.dumps(problem).encode()).render(api, request_id)
        assert isinstance(data, dict)
        return (
            200,
            dict(reply.headers),
            json.dumps(self._answer(api, data, reply, request_id)).encode(),
        )

    def _answer(
        self, api: str, data: dict[str, Any], reply: Reply, request_id: str
    ) -> dict[str, Any]:
        if api == "zai":
            domain = data.get("search_domain_filter")
            results = reply.results
            if results is None:
                results = generate_results(
                    data["search_query"],
                    int(data.get("count", 10)),
                    [domain] if domain else None,
                    self.seed,
                )
            return {
                "id": uuid.uuid4().hex,
                "created": int(time.time()),
                "request_id": request_id,
                "search_intent": [
                    {
                        "query": data["search_query"],
                        "intent": "SEARCH_ALWAYS",
                        "keywords": data["search_query"],
                    }
                ],
                "search_result": results,
            }
        items = reply.results
        if items is None:
            items = generate_results(
                data["query"],
                int(data.get("max_results", 5)),
                data.get("include_domains") or None,
                self.seed,
            )
        return {
            "query": data["query"],
            "answer": None,
            "images": [],
            "results": [
                {
                    "title": r.get("title", ""),
                    "url": r.get("link", ""),
                    "content": r.get("content", ""),
                    "score": round(1.0 - 0.01 * n, 4),
                    "raw_content": None,
                    "published_date": r.get("publish_date") or None,
                }
                for n, r in enumerate(items)
            ],
            "response_time": 0.01,
            "request_id": request_id,
        }


async def _unless_gone(reader: asyncio.StreamReader, answer: Coroutine[Any, Any, _T]) -> _T | None:
    """``answer``'s result, or None when the client closed the connection first."""
    answering = asyncio.ensure_future(answer)
    eof = asyncio.ensure_future(reader.read(1))  # clients here never pipeline requests
    done, _ = await asyncio.wait({answering, eof}, return_when=asyncio.FIRST_COMPLETED)
    if answering in done:
        eof.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await eof  # a read left pending would break the next request's read
        return answering.result()
    answering.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await answering
    return None
