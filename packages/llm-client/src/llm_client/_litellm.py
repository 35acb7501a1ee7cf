"""The LiteLLM path: imported on first use, quiet, no retries of its own, no leaked sockets.

LiteLLM caches one async HTTP client per provider *and event loop* in
``litellm.in_memory_llm_clients_cache`` and never closes them, so every ``asyncio.run`` that
makes a LiteLLM call strands its connections (about three sockets per cycle, ~1,000 after 300
cycles). When the last :class:`~llm_client.LLMClient` that used LiteLLM on a loop closes, the
clients cached for that loop are closed and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from llm_client._providers import Route

__all__ = ["acompletion", "close_loop_clients", "load_litellm"]

logger = logging.getLogger("llm_client")

_lock = threading.Lock()
_users: dict[int, int] = {}  # id(loop) -> LLMClients on that loop that used LiteLLM


def load_litellm() -> Any:
    """Import LiteLLM offline (bundled price map) and silenced (no banners, no verbose logs)."""
    # Without this LiteLLM downloads its price map at import: a blocking timeout offline.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.set_verbose = False  # type: ignore[attr-defined]
    return litellm


def register_user() -> None:
    """Count the running loop's LLMClient as a LiteLLM user (once per client)."""
    loop_id = id(asyncio.get_running_loop())
    with _lock:
        _users[loop_id] = _users.get(loop_id, 0) + 1


async def acompletion(
    route: Route, kwargs: Mapping[str, Any], seconds: float, client: Any = None
) -> Any:
    """One ``litellm.acompletion`` call with LiteLLM's own retries switched off.

    Args:
        route: A LiteLLM route.
        kwargs: Chat-completions parameters.
        seconds: Timeout of this attempt.
        client: An ``AsyncOpenAI`` of ours for OpenAI-compatible models, so LiteLLM neither
            builds (nor leaks) a client of its own per event loop.
    """
    litellm = load_litellm()
    params = dict(kwargs)
    if not route.wire_model.startswith("openai/"):
        # LiteLLM hands ``extra_body`` to OpenAI-compatible clients only; for the providers it
        # translates (Anthropic...) it would send a literal "extra_body" field. Its unknown
        # keyword arguments, though, reach the provider's body unchanged.
        params = {**(params.pop("extra_body", None) or {}), **params}
    if client is not None:
        params["client"] = client
    params["model"] = route.wire_model
    if route.base_url:
        params["api_base"] = route.base_url
    if route.api_key is not None:
        params["api_key"] = route.api_key.get_secret_value()
    if route.headers:
        params["extra_headers"] = {**dict(route.headers), **dict(params.get("extra_headers") or {})}
    # One retry owner (ours); drop_params so one option a provider lacks does not fail the call.
    return await litellm.acompletion(
        **params, timeout=seconds, num_retries=0, max_retries=0, drop_params=True
    )


def provider_usage(chunk: Any) -> Any:
    """A stream chunk's ``usage`` as the provider reported it.

    LiteLLM's stream builder writes its own bill (a float it computed) into ``usage.cost`` and
    keeps the provider's figure, if any, in ``_hidden_params["upstream_usage_cost"]``. Read
    back as is, LiteLLM's float would pass for a provider-reported cost and replace the exact
    Decimal price; this puts the provider's own figure (or none) back.
    """
    usage = getattr(chunk, "usage", None)
    hidden = getattr(chunk, "_hidden_params", None)
    if usage is None or not isinstance(hidden, dict) or "upstream_usage_cost" not in hidden:
        return usage
    dump = getattr(usage, "model_dump", None)
    raw: dict[str, Any] = dict(dump()) if callable(dump) else dict(vars(usage))
    upstream = hidden["upstream_usage_cost"]
    if upstream is None:
        raw.pop("cost", None)
    else:
        raw["cost"] = upstream
    return raw


async def close_loop_clients() -> int:
    """Release this client's hold on the loop; close LiteLLM's clients when it was the last.

    Returns:
        How many cached clients were closed.
    """
    loop = asyncio.get_running_loop()
    with _lock:
        remaining = _users.get(id(loop), 0) - 1
        if remaining > 0:
            _users[id(loop)] = remaining
            return 0
        _users.pop(id(loop), None)
    litellm = load_litellm()
    cache = getattr(litellm, "in_memory_llm_clients_cache", None)
    cache_dict: dict[str, Any] = getattr(cache, "cache_dict", {})
    suffix = _loop_suffix(loop)
    closed = 0
    for key in [k for k in list(cache_dict) if suffix is None or k.endswith(suffix)]:
        client = cache_dict.pop(key, None)
        getattr(cache, "ttl_dict", {}).pop(key, None)
        if client is not None and await _close(client):
            closed += 1
    return closed


def _loop_suffix(loop: asyncio.AbstractEventLoop) -> str | None:
    """The suffix LiteLLM appends to cache keys created on ``loop`` (None: key all loops)."""
    try:
        from litellm.caching.evicted_client_closer import (
            running_loop_token,
        )
    except ImportError:  # older LiteLLM: keys carry id(loop)
        return f"-{id(loop)}"
    token = running_loop_token()
    return None if token is None else f"-{token}"


async def _close(client: Any) -> bool:
    """Close an SDK client, LiteLLM HTTP handler or httpx client; True if something closed."""
    for name in ("aclose", "close"):
        method = getattr(client, name, None)
        if method is None:
            continue
        with contextlib.suppress(Exception):
            result = method()
            if inspect.isawaitable(result):
                await result
            return True
    inner = getattr(client, "client", None)
    return await _close(inner) if inner is not None and inner is not client else False
