"""The scriptable core shared by ``TestModel`` (in-process) and ``FakeLLMServer`` (real HTTP)."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Self

from ._anthropic import anthropic_error, anthropic_events, anthropic_message
from ._completion import AUTO_TEXT, completion_body, resolve_auto, stream_chunks
from ._reply import Reply

__all__ = ["Answer", "Drop", "Hang", "Plan", "RecordedRequest", "Responder"]

logger = logging.getLogger(__name__)

REDACTED = "[REDACTED]"
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "cookie", "x-goog-api-key"}
)
_SECRET_WORDS = ("key", "token", "secret", "password")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A chat-completions request as the fake provider received it.

    Attributes:
        model: The ``model`` field of the body.
        messages: The ``messages`` field of the body.
        body: The whole decoded JSON body (``tools``, ``response_format``, ``temperature``...).
        headers: Request headers, names lower-cased, with credentials replaced by
            ``[REDACTED]`` (``Authorization: Bearer [REDACTED]``, ``api-key``, ...).
        path: The URL path, e.g. ``/v1/chat/completions`` or ``/api/paas/v4/chat/completions``.
    """

    model: str
    messages: list[dict[str, Any]]
    body: dict[str, Any]
    headers: dict[str, str]
    path: str = "/v1/chat/completions"

    @property
    def stream(self) -> bool:
        """Whether the request asked for a streamed (SSE) answer."""
        return bool(self.body.get("stream"))


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP response to send: a JSON body, or SSE ``chunks`` when streaming."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    chunks: tuple[bytes, ...] | None = None
    cut_after: int | None = None  # drop the connection after this many chunks


@dataclass(frozen=True, slots=True)
class Hang:
    """Hold the request for ``seconds`` (``None``: until released), then answer ``then``."""

    seconds: float | None
    then: Plan


@dataclass(frozen=True, slots=True)
class Drop:
    """Close the connection without answering."""


Plan = Answer | Hang | Drop
Handler = Callable[[RecordedRequest], "Reply | None"]


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-case header names and replace credential values by ``[REDACTED]``."""
    result: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        if key in _SECRET_HEADERS or any(word in key for word in _SECRET_WORDS):
            scheme, _, rest = value.partition(" ")
            value = f"{scheme} {REDACTED}" if rest and scheme.isalpha() else REDACTED
        result[key] = value
    return result


def _json_answer(status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    data = json.dumps(payload).encode()
    return Answer(status, (("content-type", "application/json"), *headers), data)


def _raw_answer(reply: Reply) -> Answer:
    return Answer(reply.status, reply.headers, (reply.content or "").encode("utf-8"))


def _sse_answer(reply: Reply, events: Iterable[bytes]) -> Answer:
    """A streamed (``text/event-stream``) answer, cut short where ``reply`` says."""
    headers = (("content-type", "text/event-stream"), ("cache-control", "no-cache"))
    return Answer(
        reply.status, headers + reply.headers, chunks=tuple(events), cut_after=reply.cut_after
    )


def _problem(status: int, message: str) -> Answer:
    return _json_answer(
        status, {"error": {"message": message, "type": "invalid_request_error", "code": status}}
    )


class Responder:
    """Scripted, recording OpenAI-compatible chat-completions endpoint logic.

    Each request is answered by the next scripted reply (FIFO), else by ``handler(request)`` when
    it returns a reply, else by the default reply (``Reply.auto()`` unless set). Every request is
    recorded, thread-safely, with credentials redacted.

    Args:
        *replies: Replies to script right away (same as :meth:`script`).
        default: The reply once the script is used up; ``Reply.auto()`` if omitted.
        handler: Optional per-request logic, e.g. ``lambda r: Reply.text(r.model)``.
    """

    def __init__(
        self, *replies: Reply, default: Reply | None = None, handler: Handler | None = None
    ) -> None:
        # A Condition (not a bare Lock) so tests can wait for requests and hangs to arrive.
        self._lock = threading.Condition()
        self._script: deque[Reply] = deque(replies)
        self._requests: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        self._hangs: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
        self.default: Reply = default or Reply.auto()
        """The reply used when the script is empty and the handler returns ``None``."""
        self.handler: Handler | None = handler
        """Per-request logic consulted after the script: ``(RecordedRequest) -> Reply | None``."""

    def script(self, *replies: Reply) -> Self:
        """Queue replies for the next requests, in order.

        Args:
            *replies: One reply per upcoming request.

        Returns:
            ``self``, so ``TestModel().script(...)`` chains.
        """
        with self._lock:
            self._script.extend(replies)
        return self

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        """How many chat-completions requests were received."""
        with self._lock:
            return len(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request.

        Raises:
            LookupError: No request was received yet.
        """
        with self._lock:
            if not self._requests:
                raise LookupError("no request received yet")
            return self._requests[-1]

    @property
    def pending(self) -> int:
        """How many scripted replies are still unused."""
        with self._lock:
            return len(self._script)

    def reset(self) -> None:
        """Forget the script, the handler, the default and the recorded requests; release hangs."""
        with self._lock:
            self._script.clear()
            self._requests.clear()
            self.default = Reply.auto()
            self.handler = None
        self.release_hangs()

    def release_hangs(self) -> None:
        """End every request currently held by ``Reply.hang`` (they fail as dropped)."""
        with self._lock:
            hangs = list(self._hangs.values())
        for loop, event in hangs:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that event loop is already closed: nothing waits any more
                continue

    @property
    def hanging(self) -> int:
        """How many requests ``Reply.hang`` is holding right now."""
        with self._lock:
            return len(self._hangs)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> None:
        """Block until at least ``count`` requests were received in total.

        From async code use ``await asyncio.to_thread(responder.wait_for_requests, n)``.

        Args:
            count: The total number of requests to wait for.
            timeout: Seconds to wait at most.

        Raises:
            TimeoutError: Fewer requests arrived in time.
        """
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(f"{len(self._requests)} of {count} requests arrived")

    def wait_for_hangs(self, count: int = 1, timeout: float = 10.0) -> None:
        """Block until at least ``count`` requests are being held by ``Reply.hang``.

        From async code use ``await asyncio.to_thread(responder.wait_for_hangs)``.

        Args:
            count: How many concurrently hanging requests to wait for.
            timeout: Seconds to wait at most.

        Raises:
            TimeoutError: Fewer requests were hanging in time.
        """
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._hangs) >= count, timeout):
                raise TimeoutError(f"{len(self._hangs)} of {count} requests are hanging")

    def wait_until_no_hangs(self, timeout: float = 10.0) -> None:
        """Block until no request is held by ``Reply.hang`` any more.

        Args:
            timeout: Seconds to wait at most.

        Raises:
            TimeoutError: Requests were still hanging after ``timeout``.
        """
        with self._lock:
            if not self._lock.wait_for(lambda: not self._hangs, timeout):
                raise TimeoutError(f"{len(self._hangs)} requests are still hanging")

    async def wait_hang(self, seconds: float | None) -> bool:
        """Wait out a hang in the running event loop.

        Args:
            seconds: How long to wait, ``None`` for "until released".

        Returns:
            ``True`` when ``seconds`` elapsed, ``False`` when released early.
        """
        event = asyncio.Event()
        key = id(event)
        with self._lock:
            self._hangs[key] = (asyncio.get_running_loop(), event)
            self._lock.notify_all()
        try:
            if seconds is None:
                await event.wait()
                return False
            try:
                async with asyncio.timeout(seconds):
                    await event.wait()
            except TimeoutError:
                return True
            return False
        finally:
            with self._lock:
                self._hangs.pop(key, None)
                self._lock.notify_all()

    def plan(self, method: str, path: str, headers: Iterable[tuple[str, str]], body: bytes) -> Plan:
        """Decide the answer to one HTTP request (and record it when it is a chat completion).

        Args:
            method: HTTP method.
            path: URL path (a query string is ignored).
            headers: Request headers.
            body: Raw request body.

        Returns:
            What to do: an :class:`Answer`, a :class:`Hang` or a :class:`Drop`.
        """
        path = path.split("?", 1)[0]
        anthropic = path.rstrip("/").endswith("/v1/messages")
        if not (anthropic or path.rstrip("/").endswith("/chat/completions")):
            return _problem(404, f"no route for {method} {path}")
        if method.upper() != "POST":
            return _problem(405, f"method {method} not allowed")
        try:
            data = json.loads(body or b"null")
        except ValueError:
            return _problem(400, "request body is not valid JSON")
        if not isinstance(data, dict):
            return _problem(400, "request body must be a JSON object")
        messages = data.get("messages")
        request = RecordedRequest(
            model=str(data.get("model", "")),
            messages=messages if isinstance(messages, list) else [],
            body=data,
            headers=redact_headers(headers),
            path=path,
        )
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()
            reply = self._script.popleft() if self._script else None
            handler = self.handler
            default = self.default
        if reply is None and handler is not None:
            try:
                reply = handler(request)
            except Exception as exc:  # a bug in the test's handler: answer 500 and say why
                logger.exception("llm_client.testing handler raised")
                return _problem(500, f"test handler raised {type(exc).__name__}: {exc}")
        if anthropic:
            return self.render_anthropic(data, reply or default)
        return self.render(data, reply or default)

    def render_anthropic(self, body: dict[str, Any], reply: Reply) -> Plan:
        """Like :meth:`render`, in the Anthropic Messages API's format."""
        if reply.kind == "drop":
            return Drop()
        if reply.kind == "hang":
            return Hang(reply.seconds, self.render_anthropic(body, reply.then or Reply.auto()))
        if reply.kind == "raw":
            return _raw_answer(reply)
        if reply.kind == "error":
            payload = anthropic_error(reply.status, reply.error_body)
            return _json_answer(reply.status, payload, reply.headers)
        if reply.kind == "auto":
            reply = replace(Reply.text(AUTO_TEXT), usage=reply.usage, headers=reply.headers)
        with self._lock:
            message_id = f"msg_test{next(self._ids):012d}"
        if body.get("stream"):
            return _sse_answer(reply, anthropic_events(body, reply, message_id))
        message = anthropic_message(body, reply, message_id)
        return _json_answer(reply.status, message, reply.headers)

    def render(self, body: dict[str, Any], reply: Reply) -> Plan:
        """Turn a reply into a plan for the request ``body`` (resolving ``Reply.auto``).

        Args:
            body: The decoded request body.
            reply: The reply to render.

        Returns:
            The plan for the transport or server to carry out.
        """
        if reply.kind == "drop":
            return Drop()
        if reply.kind == "hang":
            return Hang(reply.seconds, self.render(body, reply.then or Reply.auto()))
        if reply.kind == "raw":
            return _raw_answer(reply)
        if reply.kind == "error":
            return _json_answer(reply.status, reply.error_body, reply.headers)
        if reply.kind == "auto":
            try:
                concrete = resolve_auto(body)
            except Exception as exc:  # e.g. SchemaGenerationError: tell the test, don't crash
                logger.exception("llm_client.testing could not generate an answer")
                return _problem(500, f"Reply.auto failed: {type(exc).__name__}: {exc}")
            reply = replace(
                concrete,
                usage=reply.usage,
                finish_reason=reply.finish_reason,
                headers=reply.headers,
            )
        with self._lock:
            completion_id = f"chatcmpl-test{next(self._ids):012d}"
        if body.get("stream"):
            return _sse_answer(reply, stream_chunks(body, reply, completion_id))
        return _json_answer(
            reply.status, completion_body(body, reply, completion_id), reply.headers
        )
