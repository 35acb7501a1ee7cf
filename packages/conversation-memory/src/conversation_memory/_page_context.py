"""Page-context providers: what the app knows about the page the user is on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["PageContextProvider", "PageContextRegistry"]

logger = logging.getLogger(__name__)

PageContextProvider = Callable[[str], Awaitable[str | None]]
"""An async callable taking the user id and returning context text (or None for nothing)."""


@dataclass(frozen=True, slots=True)
class _Registration:
    provider: PageContextProvider
    timeout: float | None


class PageContextRegistry:
    """Async page-context providers by page name, shareable across users and requests.

    A provider that raises or runs past its timeout is logged and skipped, so a slow portfolio
    service never stops the chat from answering.

    Example:
        >>> registry = PageContextRegistry()
        >>> @registry.provider("portfolio")
        ... async def holdings(user_id: str) -> str:
        ...     return "The user holds 10 VTI."
    """

    def __init__(self, *, timeout: float = 2.0) -> None:
        """Create an empty registry.

        Args:
            timeout: Default seconds a provider may take before it is skipped.
        """
        self._timeout = timeout
        self._providers: dict[str, list[_Registration]] = {}

    @property
    def pages(self) -> list[str]:
        """Names of the pages that have providers."""
        return sorted(self._providers)

    def register(
        self, page: str, provider: PageContextProvider, *, timeout: float | None = None
    ) -> None:
        """Add a provider for ``page`` (several providers per page run concurrently).

        Args:
            page: Page name, e.g. ``"portfolio"``.
            provider: Async callable ``(user_id) -> str | None``.
            timeout: Seconds this provider may take (default: the registry's timeout).
        """
        if not page:
            raise ValueError("page name must not be empty")
        self._providers.setdefault(page, []).append(_Registration(provider, timeout))

    def provider(
        self, page: str, *, timeout: float | None = None
    ) -> Callable[[PageContextProvider], PageContextProvider]:
        """Decorator form of :meth:`register`; returns the function unchanged."""

        def decorate(func: PageContextProvider) -> PageContextProvider:
            self.register(page, func, timeout=timeout)
            return func

        return decorate

    async def gather(self, page: str | None, user_id: str) -> list[str]:
        """Run the page's providers concurrently and return the texts they produced.

        Args:
            page: The page the user is on (None or unknown: no context).
            user_id: Passed to every provider.

        Returns:
            Non-empty texts in registration order; failed or timed-out providers are left out.
        """
        registrations = self._providers.get(page, []) if page else []
        if not registrations:
            return []
        results = await asyncio.gather(*(self._run(page or "", r, user_id) for r in registrations))
        return [text for text in results if text]

    async def _run(self, page: str, registration: _Registration, user_id: str) -> str | None:
        timeout = registration.timeout if registration.timeout is not None else self._timeout
        name = getattr(registration.provider, "__qualname__", repr(registration.provider))
        try:
            async with asyncio.timeout(timeout):
                # Typed as object: app code is not always typed, so check rather than trust.
                text: object = await registration.provider(user_id)
        except TimeoutError:
            logger.warning(
                "page context provider %s for page %r timed out after %ss; skipped",
                name,
                page,
                timeout,
            )
            return None
        except Exception:
            logger.exception("page context provider %s for page %r failed; skipped", name, page)
            return None
        if not isinstance(text, str | None):
            logger.warning(
                "page context provider %s returned %s, not str; skipped", name, type(text)
            )
            return None
        return text.strip() if text else None
