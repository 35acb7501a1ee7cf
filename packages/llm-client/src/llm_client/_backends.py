"""Where requests go: the openai SDK over our own connection pool, or LiteLLM; closing them all.

One ``httpx.AsyncClient`` on the SDK's aiohttp transport (one TLS context for the whole process)
serves every network route of an :class:`~llm_client.LLMClient`; each ``TestModel`` gets its own
in-process client. The SDK's retries are off (``max_retries=0``): :mod:`llm_client._retry` is
the only retry owner.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from llm_client._providers import Route

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = ["Backends"]


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS context for every client: loading the CA bundle costs ~10-100 ms each time."""
    return httpx.create_ssl_context()


@functools.cache
def _completion_type() -> type[Any]:
    from openai.types.chat import ChatCompletion

    return ChatCompletion


class Backends:
    """The HTTP clients of one ``LLMClient``, created on first use and closed together."""

    def __init__(self, timeout: float, openai_base_url: str) -> None:
        self._timeout = timeout
        self._openai_base_url = openai_base_url
        self._http: httpx.AsyncClient | None = None
        self._sdk: dict[tuple[Any, ...], tuple[Any, AsyncOpenAI]] = {}
        self._test_clients: list[httpx.AsyncClient] = []
        self._uses_litellm = False

    async def send(self, route: Route, kwargs: Mapping[str, Any], seconds: float) -> Any:
        """Send one chat-completions request; return the provider's parsed response."""
        if route.backend == "litellm":
            from llm_client import _litellm

            if not self._uses_litellm:
                self._uses_litellm = True
                _litellm.register_user()
            own = self._sdk_client(route) if route.wire_model.startswith("openai/") else None
            return await _litellm.acompletion(route, kwargs, seconds, own)
        client = self._sdk_client(route)
        body = dict(kwargs)
        body.update(body.pop("extra_body", None) or {})
        # client.post skips the SDK's per-call recursive type transform of the (already
        # JSON-ready) params, ~1/3 of its CPU; the request, error mapping and parsing into
        # ChatCompletion are the SDK's own.
        return await client.post(
            "/chat/completions",
            cast_to=_completion_type(),
            body=body,
            options={"timeout": seconds},
        )

    async def open_stream(self, route: Route, kwargs: Mapping[str, Any], seconds: float) -> Any:
        """Open a streamed chat completion; return its unread async iterator of chunks.

        The openai SDK's ``AsyncStream`` on OpenAI-compatible routes, LiteLLM's stream wrapper
        on the others; either way the last chunk carries ``usage``
        (``stream_options.include_usage``), which bills it.
        """
        if route.backend == "litellm":
            from llm_client import _litellm

            if not self._uses_litellm:
                self._uses_litellm = True
                _litellm.register_user()
            own = self._sdk_client(route) if route.wire_model.startswith("openai/") else None
            body = {**kwargs, "stream": True, "stream_options": {"include_usage": True}}
            return await _litellm.acompletion(route, body, seconds, own)
        from openai import AsyncStream
        from openai.types.chat import ChatCompletionChunk

        client = self._sdk_client(route)
        body = dict(kwargs)
        body.update(body.pop("extra_body", None) or {})
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        return await client.post(
            "/chat/completions",
            cast_to=_completion_type(),
            body=body,
            options={"timeout": seconds},
            stream=True,
            stream_cls=AsyncStream[ChatCompletionChunk],
        )

    async def aclose(self) -> None:
        """Close every connection (LiteLLM's per-loop clients too, when this was the last user)."""
        clients = [*self._test_clients, *([self._http] if self._http is not None else [])]
        self._sdk.clear()
        self._test_clients.clear()
        self._http = None
        for client in clients:
            await client.aclose()
        if self._uses_litellm:
            self._uses_litellm = False
            from llm_client._litellm import close_loop_clients

            await close_loop_clients()

    def _sdk_client(self, route: Route) -> AsyncOpenAI:
        key_value = route.api_key.get_secret_value() if route.api_key is not None else ""
        headers = dict(route.headers) if route.headers else None
        cache_key = (
            route.base_url,
            key_value,
            id(route.test_model),
            tuple(sorted(headers.items())) if headers else (),
        )
        cached = self._sdk.get(cache_key)
        if cached is not None:
            return cached[1]
        from openai import AsyncOpenAI

        if route.test_model is not None:
            http = httpx.AsyncClient(transport=route.test_model, timeout=self._timeout)
            self._test_clients.append(http)
            base_url = str(getattr(route.test_model, "base_url", route.base_url))
        else:
            if self._http is None:
                from openai import DefaultAioHttpClient

                # The SDK's aiohttp backend (openai[aiohttp]): its C HTTP parser costs about
                # half the CPU per call of httpx's pure-Python h11 stack.
                self._http = DefaultAioHttpClient(
                    verify=_ssl_context(),
                    timeout=self._timeout,
                    limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
                    follow_redirects=False,
                )
            http = self._http
            base_url = route.base_url or self._openai_base_url
        client = AsyncOpenAI(
            api_key=key_value or "not-needed",
            base_url=base_url,
            max_retries=0,
            http_client=http,
            default_headers=headers,
        )
        # Keep the transport object alive with the entry, so its id() is never reused.
        self._sdk[cache_key] = (route.test_model, client)
        return client
