"""``TestModel``: the offline, in-process provider (an ``httpx`` transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from ._reply import Reply
from ._responder import Answer, Drop, Handler, Hang, Plan, Responder

__all__ = ["TestModel"]


class _Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: tuple[bytes, ...], cut_after: int | None = None) -> None:
        self._chunks = chunks
        self._cut_after = cut_after

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for sent, chunk in enumerate(self._chunks):
            if sent == self._cut_after:
                raise httpx.RemoteProtocolError("peer closed connection mid-stream")
            yield chunk


class TestModel(Responder, httpx.AsyncBaseTransport):
    """A scriptable OpenAI-compatible provider that answers in-process, without a socket.

    It is an ``httpx.AsyncBaseTransport`` answering ``POST .../chat/completions``, so anything
    built on ``httpx`` (the ``openai`` SDK, ``LLMClient``) talks to it unchanged. By default it
    answers ``Reply.auto()``: text, or a schema-valid tool call / JSON for structured requests.

    Example:
        >>> import httpx
        >>> from llm_client.testing import Reply, TestModel
        >>> model = TestModel(Reply.text("hello"))
        >>> client = httpx.AsyncClient(transport=model, base_url=TestModel.base_url)

    ``Reply.hang()`` honours the client's read timeout (raising ``httpx.ReadTimeout``) and is
    cancelled by ``asyncio`` timeouts; ``Reply.drop()`` raises ``httpx.RemoteProtocolError``
    like a server that hung up.

    Args:
        *replies: Replies to script right away.
        default: The reply once the script is used up (``Reply.auto()``).
        handler: Optional ``(RecordedRequest) -> Reply | None`` per-request logic.
        name: The model name this test model stands for (``model="test"`` by default).
    """

    __test__ = False  # not a pytest test class, despite the name

    base_url = "http://testmodel.localhost/v1"
    """A base URL to pair with this transport (``.localhost``: never leaves the machine)."""

    def __init__(
        self,
        *replies: Reply,
        default: Reply | None = None,
        handler: Handler | None = None,
        name: str = "test",
    ) -> None:
        super().__init__(*replies, default=default, handler=handler)
        self.name = name
        """The model name this test model answers to."""

    def __repr__(self) -> str:
        return f"TestModel(name={self.name!r}, requests={self.request_count})"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer one request (the ``httpx`` transport API).

        Args:
            request: The outgoing request.

        Returns:
            The scripted response.

        Raises:
            httpx.RemoteProtocolError: The reply was ``Reply.drop()`` or a released hang.
            httpx.ReadTimeout: A hang outlasted the request's read timeout.
        """
        body = await request.aread()
        path = request.url.raw_path.decode("ascii", "replace")
        plan = self.plan(request.method, path, request.headers.multi_items(), body)
        return await self._carry_out(plan, request)

    async def _carry_out(self, plan: Plan, request: httpx.Request) -> httpx.Response:
        if isinstance(plan, Drop):
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        if isinstance(plan, Hang):
            return await self._hang(plan, request)
        assert isinstance(plan, Answer)
        if plan.chunks is not None:
            return httpx.Response(
                plan.status,
                headers=plan.headers,
                stream=_Chunks(plan.chunks, plan.cut_after),
                request=request,
            )
        return httpx.Response(plan.status, headers=plan.headers, content=plan.body, request=request)

    async def _hang(self, plan: Hang, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout") or {}
        read_timeout = timeouts.get("read") if isinstance(timeouts, dict) else None
        wait = plan.seconds
        gives_up = False
        if read_timeout is not None and (wait is None or read_timeout < wait):
            wait, gives_up = float(read_timeout), True
        if not await self.wait_hang(wait):
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        if gives_up:
            raise httpx.ReadTimeout("Timed out waiting for the test model", request=request)
        return await self._carry_out(plan.then, request)

    async def aclose(self) -> None:
        """Release any hanging request (called when the owning ``httpx`` client closes)."""
        self.release_hangs()
