"""Supabase backend: the app's ``supabase`` async client, talking to PostgREST.

Give it a client carrying the signed-in user's JWT (``client.postgrest.auth(access_token)``) and
row-level security decides what every call may see and touch; give it a client made with the
service key for server jobs (retention, support). Atomic steps are the RPC functions from
``db/migrations/20261124000300_conversations.sql``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

from conversation_memory._errors import (
    AccessDeniedError,
    ConfigurationError,
    MissingExtraError,
    StoreError,
    StoreUnavailableError,
)
from conversation_memory._models import (
    CleanupReceipt,
    ContextSnapshot,
    DeletionReceipt,
    Role,
    StoredMessage,
    Summary,
)
from conversation_memory._stores._rows import (
    message_from_json,
    snapshot_from_json,
    summary_from_json,
)

if TYPE_CHECKING:
    import httpx
    from supabase import AsyncClient

__all__ = ["SupabaseMessageStore"]

_COLUMNS: Final = "user_id,conversation_id,seq,role,content,page,token_count,created_at"
# PostgREST answers these codes when row-level security or grants refuse a request.
_DENIED: Final = frozenset({"42501", "PGRST301", "PGRST302"})


def _check_installed() -> None:
    try:
        import postgrest  # noqa: F401
        import supabase  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(
            "SupabaseMessageStore", "supabase", missing=exc.name or "supabase"
        ) from exc


class SupabaseMessageStore:
    """:class:`~conversation_memory.MessageStore` over a ``supabase`` ``AsyncClient``.

    Example:
        >>> client = await acreate_client(url, anon_key)  # doctest: +SKIP
        >>> client.postgrest.auth(session.access_token)  # the user's JWT: RLS applies
        >>> memory = ConversationMemory(SupabaseMessageStore(client), session.user.id)
    """

    def __init__(self, client: AsyncClient, *, owns_client: bool = False) -> None:
        """Wrap a client.

        Args:
            client: A ``supabase.AsyncClient`` (from ``acreate_client``).
            owns_client: Close the client's HTTP connections in :meth:`aclose`. False (the
                default): the app owns the client and closes it.

        Raises:
            MissingExtraError: If the ``supabase`` package is not installed.
        """
        _check_installed()
        self._setup(client, owns_client, None)

    def _setup(
        self, client: AsyncClient | None, owns_client: bool, factory: _ClientFactory | None
    ) -> None:
        self._client = client
        self._owns_client = owns_client
        self._factory = factory
        self._creating = asyncio.Lock()
        self._closed = False

    @classmethod
    def from_url(
        cls,
        url: str,
        key: str,
        *,
        access_token: str | None = None,
        connect_timeout: float = 5.0,
        timeout: float = 30.0,
    ) -> SupabaseMessageStore:
        """A store with a client of its own (closed by :meth:`aclose`), made on first use.

        Args:
            url: The project URL, e.g. ``https://<ref>.supabase.co``.
            key: The anon key (with ``access_token``: row-level security applies) or the
                service key (server jobs). Never logged or shown.
            access_token: The signed-in user's JWT.
            connect_timeout: Seconds to wait for a connection: an unreachable project is a
                :class:`StoreUnavailableError` after about this long (requests are not retried).
            timeout: Seconds a request may take in all.

        Raises:
            MissingExtraError: If the ``supabase`` package is not installed.
        """
        _check_installed()
        store = cls.__new__(cls)
        store._setup(None, True, _ClientFactory(url, key, access_token, connect_timeout, timeout))
        return store

    def __repr__(self) -> str:
        if self._factory is not None:
            return f"SupabaseMessageStore.from_url({_without_userinfo(self._factory.url)!r})"
        return "SupabaseMessageStore()"

    async def _ready(self) -> AsyncClient:
        if self._client is not None:
            return self._client
        if self._closed:
            raise StoreUnavailableError("the store is closed")
        async with self._creating:
            if self._client is None:
                assert self._factory is not None
                self._client = self._factory.create()
            return self._client

    async def _execute(self, request: Any, *, write: bool = False) -> Any:
        import httpx
        from postgrest.exceptions import APIError

        # postgrest-py retries a failed GET after sleeping 1, 2, 4... s; the store reports an
        # outage at once instead (StoreUnavailableError), so its wait stays bounded by the
        # client's connect timeout, whoever made the client.
        no_retry = getattr(request, "retry", None)
        if callable(no_retry):
            request = no_retry(False)
        try:
            response = await request.execute()
        except APIError as exc:
            code = str(exc.code or "")
            if code in _DENIED:
                raise AccessDeniedError(f"Supabase refused the operation: {exc.message}") from exc
            raise StoreError(f"Supabase failed ({code}): {exc.message}") from exc
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise StoreUnavailableError(f"Supabase is unavailable: {exc}") from exc
        except httpx.TransportError as exc:  # the request may have been sent
            raise StoreUnavailableError(
                f"Supabase is unavailable: {exc}", maybe_stored=write
            ) from exc
        return response.data

    async def _rpc(self, function: str, params: Mapping[str, Any], *, write: bool = False) -> Any:
        client = await self._ready()
        return await self._execute(client.rpc(function, dict(params)), write=write)

    async def append(
        self,
        user_id: str,
        conversation_id: str,
        role: Role,
        content: str,
        page: str | None,
        token_count: int,
    ) -> StoredMessage:
        """See :meth:`MessageStore.append`."""
        data = await self._rpc(
            "conversation_append",
            {
                "p_user_id": user_id,
                "p_conversation_id": conversation_id,
                "p_role": role,
                "p_content": content,
                "p_page": page,
                "p_token_count": token_count,
            },
            write=True,
        )
        row = data[0] if isinstance(data, list) else data
        return message_from_json(row)

    async def load_context(self, user_id: str, conversation_id: str, limit: int) -> ContextSnapshot:
        """See :meth:`MessageStore.load_context`."""
        data = await self._rpc(
            "conversation_context",
            {"p_user_id": user_id, "p_conversation_id": conversation_id, "p_limit": limit},
        )
        return snapshot_from_json(data)

    async def _messages(self, user_id: str, conversation_id: str) -> Any:
        client = await self._ready()
        return (
            client.table("conversations")
            .select(_COLUMNS)
            .eq("user_id", user_id)
            .eq("conversation_id", conversation_id)
        )

    async def history(
        self, user_id: str, conversation_id: str, limit: int, before_seq: int | None
    ) -> list[StoredMessage]:
        """See :meth:`MessageStore.history`."""
        query = await self._messages(user_id, conversation_id)
        if before_seq is not None:
            query = query.lt("seq", before_seq)
        rows = await self._execute(query.order("seq", desc=True).limit(limit))
        return [message_from_json(r) for r in reversed(rows)]

    async def messages_between(
        self, user_id: str, conversation_id: str, after_seq: int, before_seq: int, limit: int
    ) -> list[StoredMessage]:
        """See :meth:`MessageStore.messages_between`."""
        query = (
            (await self._messages(user_id, conversation_id))
            .gt("seq", after_seq)
            .lt("seq", before_seq)
        )
        rows = await self._execute(query.order("seq").limit(limit))
        return [message_from_json(r) for r in rows]

    async def save_summary(
        self,
        user_id: str,
        conversation_id: str,
        *,
        base_version: int,
        summary: str,
        covers_up_to_seq: int,
        covers_from_created_at: datetime,
        covers_to_created_at: datetime,
        model: str | None,
    ) -> Summary | None:
        """See :meth:`MessageStore.save_summary`."""
        data = await self._rpc(
            "conversation_save_summary",
            {
                "p_user_id": user_id,
                "p_conversation_id": conversation_id,
                "p_base_version": base_version,
                "p_summary": summary,
                "p_covers_up_to_seq": covers_up_to_seq,
                "p_covers_from_created_at": covers_from_created_at.isoformat(),
                "p_covers_to_created_at": covers_to_created_at.isoformat(),
                "p_model": model,
            },
            write=True,
        )
        row = data[0] if isinstance(data, list) and data else data
        if not row or row.get("version") is None:  # NULL composite: another writer won
            return None
        return summary_from_json(row)

    async def export_user(self, user_id: str) -> tuple[list[StoredMessage], list[Summary]]:
        """See :meth:`MessageStore.export_user`."""
        data = await self._rpc("conversation_export_user", {"p_user_id": user_id})
        return (
            [message_from_json(m) for m in data["messages"]],
            [summary_from_json(s) for s in data["summaries"]],
        )

    async def delete_user(self, user_id: str) -> DeletionReceipt:
        """See :meth:`MessageStore.delete_user`."""
        counts = await self._rpc("conversation_delete_user", {"p_user_id": user_id}, write=True)
        return DeletionReceipt(
            user_id, counts["messages"], counts["summaries"], counts["conversations"]
        )

    async def cleanup(self, cutoff: datetime, *, user_id: str | None = None) -> CleanupReceipt:
        """See :meth:`MessageStore.cleanup`; with a user's JWT only that user's rows are reached."""
        counts = await self._rpc(
            "conversation_cleanup", {"p_cutoff": cutoff.isoformat()}, write=True
        )
        return CleanupReceipt(
            cutoff, counts["messages"], counts["summaries"], counts["conversations"]
        )

    async def aclose(self) -> None:
        """Close the client's connections if this store owns it (else the app does)."""
        if not self._owns_client:
            return
        self._closed = True
        client, self._client = self._client, None
        if client is None:
            return
        await client.postgrest.aclose()
        if self._factory is not None:
            await self._factory.aclose()

    async def __aenter__(self) -> SupabaseMessageStore:
        await self._ready()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


class _ClientFactory:
    """Builds the client of a :meth:`SupabaseMessageStore.from_url` store."""

    def __init__(
        self, url: str, key: str, access_token: str | None, connect_timeout: float, timeout: float
    ) -> None:
        self.url = url
        self._key = key
        self._access_token = access_token
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        self._http: httpx.AsyncClient | None = None

    def create(self) -> AsyncClient:
        import httpx
        from supabase import AsyncClient, AsyncClientOptions

        # The store's own HTTP client carries the connect bound (postgrest's timeout argument
        # is deprecated); postgrest's retries are off so that bound is the whole wait.
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(self._timeout, connect=self._connect_timeout),
            follow_redirects=True,
        )
        options = AsyncClientOptions(httpx_client=self._http, postgrest_client_retry=False)
        try:
            client = AsyncClient(self.url, self._key, options)
        except Exception as exc:  # supabase's own "Invalid URL" / non-string checks
            raise ConfigurationError(f"invalid Supabase URL or key: {type(exc).__name__}") from None
        if self._access_token is not None:
            client.postgrest.auth(self._access_token)
        return client

    async def aclose(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()
