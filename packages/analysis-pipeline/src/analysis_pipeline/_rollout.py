"""Sticky percentage rollout: the same key always lands in the same arm.

A key (a bill id, a user id) is hashed with SHA-256 into one of 10,000 buckets; the key is in the
new arm when its bucket is below ``percent * 100``. Hashing makes the split uniform and sticky:
raising the percentage only moves keys from the old arm to the new one, never back.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass

from ._errors import InvalidInputError

__all__ = ["ENABLE_ENV_VAR", "PERCENT_ENV_VAR", "RolloutFlag", "rollout"]

ENABLE_ENV_VAR = "USE_NEW_LLM_FRAMEWORK"
PERCENT_ENV_VAR = "USE_NEW_LLM_FRAMEWORK_PERCENTAGE"
_BUCKETS = 10_000
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _bucket(key: str, salt: str) -> int:
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _BUCKETS


def _check_percent(percent: float) -> float:
    if not 0 <= percent <= 100:  # also rejects NaN
        raise InvalidInputError(f"rollout percent must be between 0 and 100, got {percent!r}")
    return float(percent)


def rollout(key: str, percent: float, *, salt: str = "llm-framework") -> bool:
    """Decide whether ``key`` is in the new arm of a ``percent`` rollout.

    Args:
        key: Stable identity of the thing being routed (bill id, user id).
        percent: Share of keys in the new arm, 0..100 (fractions allowed, 0.01 resolution).
        salt: Separates independent rollouts so they do not pick the same keys.

    Returns:
        True when the key is in the new arm. Sticky: same key and salt, same answer.

    Raises:
        InvalidInputError: ``percent`` is outside 0..100.
    """
    share = _check_percent(percent)
    return _bucket(key, salt) < round(share * _BUCKETS / 100)


@dataclass(frozen=True, slots=True)
class RolloutFlag:
    """A rollout switch read from configuration.

    Attributes:
        percent: Share of keys routed to the new framework, 0..100.
        salt: Salt of the hash (keep it fixed for the lifetime of a rollout).
    """

    percent: float
    salt: str = "llm-framework"

    def __post_init__(self) -> None:
        _check_percent(self.percent)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RolloutFlag:
        """Read the flag from ``USE_NEW_LLM_FRAMEWORK`` and ``USE_NEW_LLM_FRAMEWORK_PERCENTAGE``.

        ``USE_NEW_LLM_FRAMEWORK=true`` routes everything (100%); otherwise the percentage
        variable decides (default 0) — the seed's sequence of flag off, then 10%, 50%, then on.

        Args:
            environ: Mapping to read instead of ``os.environ``.

        Returns:
            The configured flag.

        Raises:
            InvalidInputError: A variable holds an unparsable value or a percent outside 0..100.
        """
        env = os.environ if environ is None else environ
        enabled = env.get(ENABLE_ENV_VAR, "").strip().lower()
        if enabled not in _TRUE | _FALSE:
            raise InvalidInputError(f"{ENABLE_ENV_VAR} must be true or false, got {enabled!r}")
        if enabled in _TRUE:
            return cls(100.0)
        raw = env.get(PERCENT_ENV_VAR, "").strip().rstrip("%")
        if not raw:
            return cls(0.0)
        try:
            percent = float(raw)
        except ValueError:
            raise InvalidInputError(f"{PERCENT_ENV_VAR} must be a number, got {raw!r}") from None
        return cls(percent)

    def enabled_for(self, key: str) -> bool:
        """Tell whether ``key`` uses the new framework.

        Args:
            key: Stable identity (bill id, user id).

        Returns:
            True in the new arm.
        """
        return rollout(key, self.percent, salt=self.salt)
