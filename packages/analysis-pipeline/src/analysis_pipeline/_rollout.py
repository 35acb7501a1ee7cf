"""Sticky percentage rollout with a kill switch: the same key always lands in the same arm.

A key (a bill id, a user id) is hashed with SHA-256 into one of 10,000 buckets; the key is in the
new arm when its bucket is below ``percent * 100``. Hashing makes the split uniform and sticky:
raising the percentage only moves keys from the old arm to the new one, never back.

Above the percentage sits the kill switch ``enabled``: False turns the new framework off for
every key whatever the percentage says, True turns it on for every key, None lets the
percentage decide. The flag comes from the environment or, winning over it, from a row in the
run store an admin flips without a restart (:func:`resolve_rollout`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._errors import InvalidInputError

if TYPE_CHECKING:
    from ._stores import RunStore

__all__ = [
    "DEFAULT_FLAG",
    "ENABLE_ENV_VAR",
    "PERCENT_ENV_VAR",
    "RolloutFlag",
    "parse_switch",
    "resolve_rollout",
    "rollout",
]

ENABLE_ENV_VAR = "USE_NEW_LLM_FRAMEWORK"
PERCENT_ENV_VAR = "USE_NEW_LLM_FRAMEWORK_PERCENTAGE"
_BUCKETS = 10_000
DEFAULT_FLAG = "llm-framework"
"""The flag (and hash salt) of the switch-over from the apps' legacy code to llm-common."""
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_UNSET = frozenset({"", "unset", "none"})


def parse_switch(value: str | None, what: str = ENABLE_ENV_VAR) -> bool | None:
    """Read a kill-switch value: true/1/on/yes, false/0/off/no, or unset (empty/None/"unset").

    Args:
        value: The raw text (case and surrounding blanks ignored).
        what: Where it came from, for the error message.

    Returns:
        True, False, or None for "use the percentage".

    Raises:
        InvalidInputError: Anything else.
    """
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text in _UNSET:
        return None
    raise InvalidInputError(
        f"{what} must be true/1/on/yes, false/0/off/no or empty (unset: use the percentage), "
        f"got {value!r}"
    )


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
    """A rollout switch: a kill switch above a sticky percentage.

    Attributes:
        percent: Share of keys routed to the new framework while ``enabled`` is None, 0..100.
        salt: Salt of the hash (keep it fixed for the lifetime of a rollout).
        enabled: The kill switch: False = no key is routed (whatever ``percent`` says), True =
            every key is, None = ``percent`` decides.
        source: Where the flag was read (``env``, ``store``, ``default``); informational.
    """

    percent: float
    salt: str = DEFAULT_FLAG
    enabled: bool | None = None
    source: str = "default"

    def __post_init__(self) -> None:
        _check_percent(self.percent)

    @property
    def effective_percent(self) -> float:
        """The share of keys actually routed: 0 when switched off, 100 when on, else percent."""
        if self.enabled is None:
            return self.percent
        return 100.0 if self.enabled else 0.0

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, salt: str = DEFAULT_FLAG
    ) -> RolloutFlag:
        """Read the flag from ``USE_NEW_LLM_FRAMEWORK`` and ``USE_NEW_LLM_FRAMEWORK_PERCENTAGE``.

        ``USE_NEW_LLM_FRAMEWORK`` false/0/off/no turns the new framework off whatever the
        percentage says (the plan's first rollback step); true/1/on/yes turns it on for every
        key; unset or empty lets ``USE_NEW_LLM_FRAMEWORK_PERCENTAGE`` decide (default 0).

        Args:
            environ: Mapping to read instead of ``os.environ``.
            salt: Salt of the hash.

        Returns:
            The configured flag (``source="env"``).

        Raises:
            InvalidInputError: A variable holds an unparsable value or a percent outside 0..100.
        """
        env = os.environ if environ is None else environ
        enabled = parse_switch(env.get(ENABLE_ENV_VAR), ENABLE_ENV_VAR)
        raw = env.get(PERCENT_ENV_VAR, "").strip().rstrip("%")
        percent = 0.0
        if raw:
            try:
                percent = float(raw)
            except ValueError:
                raise InvalidInputError(
                    f"{PERCENT_ENV_VAR} must be a number 0..100, got {raw!r}"
                ) from None
            if not 0 <= percent <= 100:
                raise InvalidInputError(f"{PERCENT_ENV_VAR} must be between 0 and 100, got {raw!r}")
        return cls(percent, salt=salt, enabled=enabled, source="env")

    def routes(self, key: str) -> bool:
        """Tell whether ``key`` goes to the new framework.

        Args:
            key: Stable identity (bill id, user id).

        Returns:
            False for every key when switched off, True for every key when switched on,
            otherwise the sticky percentage decides.
        """
        if self.enabled is not None:
            return self.enabled
        return rollout(key, self.percent, salt=self.salt)

    def enabled_for(self, key: str) -> bool:
        """The 0.1 name of :meth:`routes`."""
        return self.routes(key)


async def resolve_rollout(
    store: RunStore, *, name: str = DEFAULT_FLAG, environ: Mapping[str, str] | None = None
) -> RolloutFlag:
    """The rollout flag in force: the store's row when an admin has set one, else the env.

    Read it per request (or cache it for a few seconds): a row flipped in the store takes
    effect without a restart.

    Args:
        store: The run store holding ``pipeline_flags``.
        name: The flag; also the hash salt, so each flag splits keys independently.
        environ: Mapping to read instead of ``os.environ`` when the store has no row.

    Returns:
        The flag (``source`` says ``store`` or ``env``).

    Raises:
        InvalidInputError: No row and the environment holds an unparsable value.
        StoreError: The store could not be read.
    """
    state = await store.get_flag(name)
    if state is None:
        return RolloutFlag.from_env(environ, salt=name)
    return RolloutFlag(state.percent, salt=name, enabled=state.enabled, source="store")
