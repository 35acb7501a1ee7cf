"""``FakeLLMServer``: a real OpenAI-compatible HTTP/1.1 server on 127.0.0.1 for tests."""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import threading
from types import TracebackType
from typing import Any, Self

import h11

from ._errors import LLMTestingError
from ._reply import Reply
from ._responder import Answer, Drop, Handler, Hang, Plan, Responder

__all__ = ["FakeLLMServer"]

_READ_SIZE = 65536
_MAX_BODY = 32 * 1024 * 1024


class _Disconnected(Exception):
    """The client went away mid-request."""


class FakeLLMServer(Responder):
    """An OpenAI-compatible chat-completions server on 127.0.0.1, for tests.

    It runs in a background thread with its own event loop, so one server outlives many
    ``asyncio.run`` calls and serves sync and async clients alike. It answers
    ``POST <any prefix>/chat/completions`` over genuine HTTP/1.1 with keep-alive, so the same
    server poses as OpenAI (``base_url``), OpenRouter (``openrouter_base_url``) and z.ai
    (``zai_base_url``). Replies are scripted exactly as for :class:`TestModel`.

    Example:
        >>> from llm_client.testing import FakeLLMServer, Reply
        >>> with FakeLLMServer(Reply.text("hi")) as server:
        ...     base_url = server.base_url  # "http://127.0.0.1:<port>/v1"

    Args:
        *replies: Replies to script right away.
        default: The reply once the script is used up (``Reply.auto()``).
        handler: Optional ``(RecordedRequest) -> Reply | None`` per-request logic.
        host: Interface to bind; keep the loopback default.
        port: Port to bind; ``0`` picks a free one.
    """

    def __init__(
        self,
        *replies: Reply,
        default: Reply | None = None,
        handler: Handler | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(*replies, default=default, handler=handler)
        self._host = host
        self._port = port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._start_error: BaseException | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.connections_accepted = 0
        """How many TCP connections the server accepted (keep-alive reuses one)."""
        self._in_flight = 0
        self.max_in_flight = 0
        """Most requests the server was answering at the same moment (hangs included)."""
        self.served_usage: list[dict[str, Any]] = []
        """``usage`` of every successful reply written in full to a client still connected
        (a client that went away during a hang is not served): what a provider would bill."""

    def reset(self) -> None:
        """As :meth:`Responder.reset`, and forget the served usage and the in-flight peak."""
        super().reset()
        self.served_usage = []
        self.max_in_flight = self._in_flight

    def __repr__(self) -> str:
        state = self.url if self._thread else "stopped"
        return f"FakeLLMServer({state}, requests={self.request_count})"

    @property
    def port(self) -> int:
        """The TCP port the server listens on.

        Raises:
            LLMTestingError: The server is not running.
        """
        if self._thread is None:
            raise LLMTestingError("FakeLLMServer is not running; use it as a context manager")
        return self._port

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:8123``."""
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL (``<url>/v1``) for ``AsyncOpenAI(base_url=...)`` or LiteLLM."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """Base URL for Anthropic models through LiteLLM (it appends ``/v1/messages``)."""
        return self.url

    @property
    def openrouter_base_url(self) -> str:
        """Base URL shaped like OpenRouter's (``<url>/api/v1``)."""
        return f"{self.url}/api/v1"

    @property
    def zai_base_url(self) -> str:
        """Base URL shaped like z.ai's (``<url>/api/paas/v4``)."""
        return f"{self.url}/api/paas/v4"

    def start(self) -> Self:
        """Start serving in a background thread (idempotent).

        Returns:
            ``self``.

        Raises:
            OSError: The address could not be bound.
        """
        if self._thread is not None:
            return self
        started = threading.Event()
        thread = threading.Thread(
            target=self._run, args=(started,), name="FakeLLMServer", daemon=True
        )
        thread.start()
        started.wait()
        if self._start_error is not None:
            thread.join()
            error, self._start_error = self._start_error, None
            raise error
        self._thread = thread
        return self

    def close(self) -> None:
        """Stop serving: release hangs, close every connection and join the thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        self.release_hangs()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the server thread ------------------------------------------------------------------

    def _run(self, started: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        server: asyncio.Server | None = None
        try:
            server = loop.run_until_complete(
                asyncio.start_server(self._serve, self._host, self._port)
            )
            self._port = server.sockets[0].getsockname()[1]
        except BaseException as exc:  # handed to start() in the caller's thread
            self._start_error = exc
        started.set()
        try:
            if server is not None:
                loop.run_forever()
                loop.run_until_complete(self._shutdown(server))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
            self._loop = None

    async def _shutdown(self, server: asyncio.Server) -> None:
        server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self.connections_accepted += 1
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_BODY)
        try:
            while await self._one_exchange(conn, reader, writer):
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except (_Disconnected, ConnectionError, h11.LocalProtocolError):
            pass
        except h11.RemoteProtocolError as exc:
            await self._send_bad_request(conn, writer, exc)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()
            self._connections.discard(task)

    async def _send_bad_request(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, exc: h11.RemoteProtocolError
    ) -> None:
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = b'{"error": {"message": "malformed HTTP request", "code": 400}}'
        headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
        with contextlib.suppress(h11.LocalProtocolError, ConnectionError):
            status = exc.error_status_hint
            writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
            writer.write(conn.send(h11.Data(data=body)))
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()

    async def _one_exchange(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        event = await _next_event(conn, reader)
        if isinstance(event, h11.ConnectionClosed):
            return False
        assert isinstance(event, h11.Request)
        chunks: list[bytes] = []
        while True:
            part = await _next_event(conn, reader)
            if isinstance(part, h11.Data):
                chunks.append(bytes(part.data))
            elif isinstance(part, h11.EndOfMessage):
                break
            else:
                raise _Disconnected
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers]
        self._in_flight += 1  # only touched on the server loop: no lock needed
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            plan = self.plan(
                event.method.decode("ascii"),
                event.target.decode("latin-1"),
                headers,
                b"".join(chunks),
            )
            return await self._carry_out(plan, conn, reader, writer)
        finally:
            self._in_flight -= 1

    async def _carry_out(
        self,
        plan: Plan,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        if isinstance(plan, Drop):
            return False
        if isinstance(plan, Hang):
            if not await self._hang(plan.seconds, conn, reader):
                return False
            return await self._carry_out(plan.then, conn, reader, writer)
        assert isinstance(plan, Answer)
        headers = [("server", "llm-client-fake"), *plan.headers]
        if plan.chunks is None:
            headers.append(("content-length", str(len(plan.body))))
        reason = _reason(plan.status)
        writer.write(
            conn.send(h11.Response(status_code=plan.status, headers=headers, reason=reason))
        )
        for sent, chunk in enumerate(plan.chunks if plan.chunks is not None else (plan.body,)):
            if plan.chunks is not None and sent == plan.cut_after:
                return False  # dropped mid-stream: the caller closes the connection
            if chunk:
                writer.write(conn.send(h11.Data(data=chunk)))
                await writer.drain()
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
        if plan.status == 200 and plan.chunks is None:
            self._record_usage(plan.body)
        return True

    def _record_usage(self, body: bytes) -> None:
        try:
            payload = json.loads(body)
        except ValueError:
            return
        if isinstance(payload, dict) and isinstance(payload.get("usage"), dict):
            usage = dict(payload["usage"])
            usage["model"] = payload.get("model")
            self.served_usage.append(usage)

    async def _hang(
        self, seconds: float | None, conn: h11.Connection, reader: asyncio.StreamReader
    ) -> bool:
        """Hold the request; ``True`` when ``seconds`` elapsed, ``False`` on release/disconnect."""
        waiter = asyncio.ensure_future(self.wait_hang(seconds))
        try:
            while True:
                eof = asyncio.ensure_future(reader.read(_READ_SIZE))
                done, _ = await asyncio.wait({waiter, eof}, return_when=asyncio.FIRST_COMPLETED)
                if waiter in done:
                    # Wait for the cancelled read to unwind: a read still pending on this stream
                    # would make the next request's read fail ("already waiting") on keep-alive.
                    eof.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await eof
                    return waiter.result()
                data = eof.result()
                if not data:  # the client gave up (its timeout) and closed the socket
                    return False
                conn.receive_data(data)  # a pipelined request: h11 buffers it for later
        finally:
            waiter.cancel()


async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader) -> object:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await reader.read(_READ_SIZE))


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""
