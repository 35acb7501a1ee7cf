"""The switch that keeps test suites from calling real LLM providers (part of the core).

``llm_client.testing`` re-exports these names for tests and apps; the core never imports
``llm_client.testing``. The client core calls :func:`check_request_allowed` with the base URL
of every request it is about to make. Loopback URLs (the
:class:`~llm_client.testing.FakeLLMServer`, a local model server) and the in-process
:class:`~llm_client.testing.TestModel` are always allowed; anything else is refused with
:class:`RealRequestsBlockedError` while real requests are blocked.

Blocked when, in order of precedence:

1. inside ``with block_real_requests():`` (or allowed inside ``with allow_real_requests():``);
2. after ``llm_client.testing.ALLOW_REAL_REQUESTS = False`` (pydantic-ai's ``ALLOW_MODEL_REQUESTS``
   idiom; ``monkeypatch.setattr`` works too);
3. when the environment variable ``LLM_CLIENT_BLOCK_REAL_REQUESTS`` is ``1``/``true``/``yes``
   (read at every check, so a conftest can set it at any time).
"""

from __future__ import annotations

import ipaddress
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from urllib.parse import urlsplit

from llm_client._errors import RealRequestsBlockedError

__all__ = [
    "BLOCK_ENV_VAR",
    "RealRequestsBlockedError",
    "allow_real_requests",
    "block_real_requests",
    "check_request_allowed",
    "is_loopback_url",
    "real_requests_allowed",
    "set_real_requests_allowed",
]

BLOCK_ENV_VAR = "LLM_CLIENT_BLOCK_REAL_REQUESTS"
"""Environment variable blocking real provider requests when ``1``, ``true`` or ``yes``."""

_TRUTHY = frozenset({"1", "true", "yes", "on"})

# Explicit setting from code; None means "ask the environment". A lock because the flag is read
# from FakeLLMServer's thread and from worker threads, and the context managers must restore it.
_lock = threading.Lock()
_override: bool | None = None


def real_requests_allowed() -> bool:
    """Tell whether requests to non-loopback providers are currently allowed.

    Returns:
        ``False`` inside :func:`block_real_requests`, after ``ALLOW_REAL_REQUESTS = False``, or
        when ``LLM_CLIENT_BLOCK_REAL_REQUESTS`` is truthy; ``True`` otherwise.
    """
    override = _override
    if override is not None:
        return override
    return os.environ.get(BLOCK_ENV_VAR, "").strip().lower() not in _TRUTHY


def set_real_requests_allowed(allowed: bool | None) -> None:
    """Allow or block real requests from now on.

    Args:
        allowed: ``True`` to allow, ``False`` to block, ``None`` to defer to the environment
            variable again.
    """
    global _override
    with _lock:
        _override = allowed


@contextmanager
def _overridden(allowed: bool) -> Iterator[None]:
    global _override
    with _lock:
        previous = _override
        _override = allowed
    try:
        yield
    finally:
        with _lock:
            _override = previous


def block_real_requests() -> AbstractContextManager[None]:
    """Block requests to non-loopback providers inside a ``with`` block.

    Example:
        >>> from llm_client.testing import block_real_requests
        >>> with block_real_requests():
        ...     pass  # LLMClient calls to real providers raise RealRequestsBlockedError here

    Returns:
        A context manager restoring the previous setting on exit.
    """
    return _overridden(False)


def allow_real_requests() -> AbstractContextManager[None]:
    """Allow requests to real providers inside a ``with`` block, even when blocked globally.

    Returns:
        A context manager restoring the previous setting on exit.
    """
    return _overridden(True)


def is_loopback_url(url: str | None) -> bool:
    """Tell whether ``url`` points at this machine (127.0.0.0/8, ``::1`` or ``localhost``).

    Args:
        url: An absolute URL such as ``http://127.0.0.1:8123/v1``; ``None`` or an empty string
            (meaning "the provider's default endpoint") is not loopback.

    Returns:
        ``True`` only for loopback hosts.
    """
    if not url:
        return False
    try:
        host = urlsplit(url if "//" in url else f"//{url}").hostname
    except ValueError:
        return False
    if not host:
        return False
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_request_allowed(base_url: str | None) -> None:
    """Raise unless a request to ``base_url`` may be made now.

    The client core calls this before every provider request (with ``None`` when the provider's
    default endpoint will be used).

    Args:
        base_url: The endpoint about to be called, or ``None`` for the provider default.

    Raises:
        RealRequestsBlockedError: Real requests are blocked and ``base_url`` is not loopback.
    """
    if real_requests_allowed() or is_loopback_url(base_url):
        return
    where = _describe(base_url)
    raise RealRequestsBlockedError(
        f"Real LLM requests are blocked (refused a request to {where}). Use model='test', a "
        "llm_client.testing.TestModel or a FakeLLMServer base URL, or allow real requests with "
        f"llm_client.testing.allow_real_requests() / unset {BLOCK_ENV_VAR}."
    )


def _describe(base_url: str | None) -> str:
    # Only scheme and host: a URL may carry credentials in its userinfo or query string.
    if not base_url:
        return "the provider's default endpoint"
    try:
        parts = urlsplit(base_url if "//" in base_url else f"//{base_url}")
        host = parts.hostname or "?"
    except ValueError:
        return "an unparsable URL"
    return f"{parts.scheme or 'https'}://{host}"
