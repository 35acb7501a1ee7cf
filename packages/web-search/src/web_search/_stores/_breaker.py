"""A circuit breaker for the Supabase tier (the PostgreSQL tier gets one from llm-common-db)."""

from __future__ import annotations

import logging
import time

from web_search._errors import StoreUnavailableError

__all__ = ["Breaker"]

logger = logging.getLogger(__name__)


class Breaker:
    """Fail at once for ``interval`` seconds after the store proved unreachable; then probe.

    Args:
        name: What is guarded, for messages (``Supabase at https://host``).
        interval: Seconds to fail fast after a failure.
    """

    def __init__(self, name: str, interval: float) -> None:
        if interval < 0:
            raise ValueError("breaker interval must not be negative")
        self.name = name
        self.interval = interval
        self._open_until: float | None = None
        self._reason = ""

    def check(self) -> None:
        """Raise ``StoreUnavailableError`` while open; after the interval one call goes through.

        Raises:
            StoreUnavailableError: The breaker is open.
        """
        if self._open_until is None:
            return
        remaining = self._open_until - time.monotonic()
        if remaining > 0:
            raise StoreUnavailableError(
                f"{self.name} is unreachable (circuit breaker open, retrying in "
                f"{remaining:.1f} s; last error: {self._reason})"
            )
        # The probe: until it answers, concurrent callers keep failing fast.
        self._open_until = time.monotonic() + self.interval

    def failed(self, reason: str) -> StoreUnavailableError:
        """Open the breaker (one WARNING per outage); returns the error to raise."""
        if self._open_until is None:
            logger.warning(
                "%s is unreachable (%s); failing fast for %.1f s", self.name, reason, self.interval
            )
        self._open_until = time.monotonic() + self.interval
        self._reason = reason
        return StoreUnavailableError(f"{self.name} is unreachable ({reason})")

    def succeeded(self) -> None:
        """Close the breaker after a call got through."""
        if self._open_until is not None:
            self._open_until = None
            logger.info("%s is reachable again", self.name)
