"""A loopback TCP proxy to simulate a database outage: stop it, start it again on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType

from ._urls import replace_url, url_parts


class TcpProxy:
    """Forward ``127.0.0.1:<port>`` to ``target_host:target_port`` from a background thread.

    Usable from sync and async code and across event loops (it runs its own loop). ``stop()``
    closes the listener *and* aborts every live connection, so clients see the database vanish
    mid-session; ``start()`` listens again on the same port.

    Example:
        >>> with TcpProxy.for_url(db_url) as proxy:  # doctest: +SKIP
        ...     url = proxy.url_for(db_url)  # connect through the proxy
        ...     proxy.stop()  # outage
        ...     proxy.start()  # back
    """

    def __init__(self, target_host: str, target_port: int, *, port: int = 0) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = "127.0.0.1"
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="TcpProxy", daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()  # every open socket, both directions
        self._clients: set[asyncio.StreamWriter] = set()  # accepted client connections
        self._closed = False

    @classmethod
    def for_url(cls, db_url: str) -> TcpProxy:
        """A started proxy in front of the server ``db_url`` points at."""
        host, port, _ = url_parts(db_url)
        return cls(host, port).start()

    @property
    def running(self) -> bool:
        """Whether the proxy is accepting connections."""
        return self._server is not None

    @property
    def connection_count(self) -> int:
        """Live client connections (each has a matching upstream connection once connected)."""
        return len(self._clients)

    def url_for(self, db_url: str) -> str:
        """``db_url`` rewritten to go through this proxy."""
        if not self.port:
            raise RuntimeError("start() the proxy first: its port is chosen on first start")
        return replace_url(db_url, host=self.host, port=self.port)

    def start(self) -> TcpProxy:
        """Listen (again) — on the same port as before after a ``stop()``. Returns self."""
        if self._closed:
            raise RuntimeError("TcpProxy is closed")
        if self._server is None:
            asyncio.run_coroutine_threadsafe(self._start(), self._loop).result()
        return self

    def stop(self) -> None:
        """Stop listening and abort every live connection (a database outage)."""
        if self._server is not None and not self._closed:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result()

    def close(self) -> None:
        """Stop and end the background thread. The proxy cannot be restarted."""
        if self._closed:
            return
        self.stop()
        self._closed = True
        asyncio.run_coroutine_threadsafe(self._cancel_handlers(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _cancel_handlers(self) -> None:
        """End every connection handler and let the loop finish closing their sockets."""
        # A connection accepted just before the listener closed is still on its way through
        # asyncio's own tasks (socket -> transport -> our handler). Cancelled midway it would
        # never be closed, so each pass aborts what the handlers have registered and waits for
        # the rest to arrive; handlers end by themselves once their sockets are aborted.
        current = asyncio.current_task()
        for _ in range(50):
            await asyncio.sleep(0)
            for writer in list(self._writers):
                writer.transport.abort()
            pending = [t for t in asyncio.all_tasks() if t is not current]
            if not pending:
                break
            await asyncio.wait(pending, timeout=0.05)
        else:  # a handler stuck connecting upstream: cancel it (its finally aborts its socket)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        # abort() releases a socket in a callback on a later pass of the loop, which must run
        # before the loop is stopped.
        for _ in range(3):
            await asyncio.sleep(0)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            # A connection accepted just before Server.close() gets its transport just after
            # it, and Python 3.11's server then fails an assertion and leaks the socket. So:
            # stop accepting, let those connections reach their handlers, then close.
            for sock in server.sockets:
                self._loop.remove_reader(sock.fileno())
            for _ in range(3):
                await asyncio.sleep(0)
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        self._clients.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Tracked from the moment it is accepted, so a stop() while the upstream connection is
        # still being opened aborts it too; the finally aborts on any exit, cancellation included.
        self._writers.add(writer)
        self._clients.add(writer)
        up_writer: asyncio.StreamWriter | None = None
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    self.target_host, self.target_port
                )
            except OSError:
                return
            if self._server is None:  # stopped while connecting upstream
                return
            self._writers.add(up_writer)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._clients.discard(writer)
            for w in (writer, up_writer):
                if w is not None:
                    self._writers.discard(w)
                    w.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        # Half-close is not needed by the PostgreSQL protocol: end both directions together.
        writer.transport.abort()
