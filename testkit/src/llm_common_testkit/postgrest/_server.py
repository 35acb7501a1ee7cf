"""SupabaseServer: the PostgREST-compatible app served by uvicorn on 127.0.0.1 in a thread."""

from __future__ import annotations

import secrets
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

import jwt
import uvicorn

from llm_common_testkit._rls import rls_conninfo

from ._app import PostgrestApp

if TYPE_CHECKING:
    from supabase import AsyncClient, Client


ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def _close_connections(app: ASGIApp) -> ASGIApp:
    """Answer every response with ``Connection: close``.

    Tests often create a supabase client and never close it; with keep-alive its pooled socket
    would be garbage-collected open (a ResourceWarning, an error under filterwarnings=error).
    Closing after each response leaves clients nothing to leak, at the cost of one loopback
    handshake per request.
    """

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_closing(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await app(scope, receive, send_closing)

    return wrapped


class SupabaseServer:
    """A loopback stand-in for Supabase's REST API (PostgREST) over a real database.

    Point the real ``supabase`` client at it::

        with SupabaseServer(db_url) as server:
            client = create_client(server.url, server.service_key)
            client.table("t").select("*").execute()

    Attributes:
        db_url: The database it serves (requests run as ``authenticator`` → the JWT's role).
        jwt_secret: The HS256 secret every key is signed with.
        anon_key: A JWT with ``role: anon`` (Supabase's anon key).
        service_key: A JWT with ``role: service_role`` (bypasses RLS).
    """

    def __init__(self, db_url: str, *, jwt_secret: str | None = None) -> None:
        self.db_url = db_url
        self.jwt_secret = jwt_secret or secrets.token_urlsafe(32)
        self.anon_key = self.sign({"role": "anon", "iss": "supabase"})
        self.service_key = self.sign({"role": "service_role", "iss": "supabase"})
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def port(self) -> int:
        """The port it listens on (chosen by the OS at start)."""
        if self._sock is None:
            raise RuntimeError("SupabaseServer is not started")
        return int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        """Base URL for ``create_client(url, key)`` (the REST API is under ``/rest/v1``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def rest_url(self) -> str:
        """The PostgREST root, ``<url>/rest/v1``."""
        return f"{self.url}/rest/v1"

    def sign(self, claims: dict[str, Any]) -> str:
        """Sign ``claims`` (HS256) with this server's secret."""
        return jwt.encode(claims, self.jwt_secret, algorithm="HS256")

    def jwt_for(
        self,
        user_id: str | uuid.UUID,
        *,
        role: str = "authenticated",
        expires_in: int = 3600,
        **claims: Any,
    ) -> str:
        """A user's access token: ``sub=user_id``, ``role=authenticated`` (Supabase's shape)."""
        now = int(time.time())
        return self.sign(
            {
                "sub": str(user_id),
                "role": role,
                "aud": "authenticated",
                "iat": now,
                "exp": now + expires_in,
                **claims,
            }
        )

    def _headers(self, user_id: str | uuid.UUID | None) -> dict[str, str]:
        if user_id is None:
            return {}
        return {"Authorization": f"Bearer {self.jwt_for(user_id)}"}

    @contextmanager
    def client(
        self, key: str | None = None, *, user_id: str | uuid.UUID | None = None
    ) -> Iterator[Client]:
        """A sync ``supabase.Client`` for this server, closed on exit.

        Args:
            key: The API key (default: the service key).
            user_id: Act as this user (sends ``jwt_for(user_id)`` as the bearer token).
        """
        import httpx
        from supabase import ClientOptions, create_client

        with httpx.Client(timeout=30) as http:
            options = ClientOptions(headers=self._headers(user_id), httpx_client=http)
            yield create_client(self.url, key or self.service_key, options=options)

    @asynccontextmanager
    async def async_client(
        self, key: str | None = None, *, user_id: str | uuid.UUID | None = None
    ) -> AsyncIterator[AsyncClient]:
        """An async ``supabase.AsyncClient``, closed on exit (see :meth:`client`)."""
        import httpx
        from supabase import AsyncClientOptions, acreate_client

        async with httpx.AsyncClient(timeout=30) as http:
            options = AsyncClientOptions(headers=self._headers(user_id), httpx_client=http)
            yield await acreate_client(self.url, key or self.service_key, options=options)

    def start(self) -> SupabaseServer:
        """Start serving; returns once the database pool is open. Returns self."""
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)  # connections made before uvicorn accepts wait in the backlog
        self._sock = sock
        app = PostgrestApp(rls_conninfo(self.db_url), self.jwt_secret, self._ready.set)
        config = uvicorn.Config(
            _close_connections(app.asgi),
            log_level="warning",
            access_log=False,
            lifespan="on",
            http="h11",
            ws="none",
            loop="asyncio",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.run(sockets=[sock]), name="SupabaseServer", daemon=True
        )
        self._thread.start()
        while not self._ready.wait(0.05):
            if not self._thread.is_alive():
                self.stop()
                raise RuntimeError("SupabaseServer failed to start (see the log above)")
        return self

    def stop(self) -> None:
        """Stop serving and close the database pool."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = None
        self._ready.clear()

    def __enter__(self) -> SupabaseServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
