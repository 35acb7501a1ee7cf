"""Local persistent tier on diskcache (SQLite): no server, safe across processes on one machine.

Layout inside the diskcache directory: ``web-search:entry:<key>`` holds ``(expires_at as a
POSIX timestamp, JSON payload)``, ``web-search:stats:<namespace>:<field>`` the counters.
Writes run in a worker thread so a locked database never stalls the event loop.

A cache file that is not a valid SQLite database (truncated, overwritten, disk damage) is
recovered, not fatal: a cache can be rebuilt, so the damaged files are moved aside into
``corrupt-<UTC time>/`` inside the directory (kept for inspection, never deleted), the cache
starts empty, and a WARNING names both paths. Only if that is impossible (e.g. no permission)
does ``StoreCorruptError`` name the file and say what to do.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import threading
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import diskcache

from web_search._errors import StoreCorruptError, StoreError
from web_search._types import CacheStats

from ._protocol import STAT_FIELDS, CacheWrite

__all__ = ["CACHE_DIR_NAME", "LocalSearchCache", "default_cache_dir", "state_dir"]

logger = logging.getLogger(__name__)

_ENTRY = "web-search:entry:"
_STATS = "web-search:stats:"
_DB_FILES = ("cache.db", "cache.db-wal", "cache.db-shm")
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26
_recovering = threading.Lock()

CACHE_DIR_NAME = "web-search-cache"
"""This package's directory inside the shared state directory."""

T = TypeVar("T")


def state_dir() -> Path:
    """The llm-common state directory: ``$LLM_COMMON_DIR``, else ``./.llm-common``."""
    return Path(os.environ.get("LLM_COMMON_DIR") or Path.cwd() / ".llm-common")


def default_cache_dir() -> Path:
    """Where ``LocalSearchCache()`` lives by default: ``<state dir>/web-search-cache``.

    ``WEB_SEARCH_CACHE_DIR`` still wins for one minor version, with a DeprecationWarning.
    """
    legacy = os.environ.get("WEB_SEARCH_CACHE_DIR")
    if legacy:
        warnings.warn(
            "WEB_SEARCH_CACHE_DIR is deprecated: set LLM_COMMON_DIR (the cache then lives in "
            f"$LLM_COMMON_DIR/{CACHE_DIR_NAME}) or pass LocalSearchCache(directory)",
            DeprecationWarning,
            stacklevel=3,
        )
        return Path(legacy)
    return state_dir() / CACHE_DIR_NAME


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    return "not a database" in str(exc) or "malformed" in str(exc)


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


class LocalSearchCache:
    """Persistent tier in a diskcache directory.

    Args:
        directory: Where the cache lives (created if missing); several processes may share
            it. Default: ``web-search-cache`` in the state directory (``$LLM_COMMON_DIR``,
            else ``./.llm-common``).
        size_limit: Bytes before diskcache evicts least-recently-stored entries (1 GiB).

    Raises:
        StoreCorruptError: The cache file is damaged and could not be moved aside.
        StoreError: The directory cannot be opened (permissions, not a directory...).
    """

    def __init__(self, directory: str | Path | None = None, *, size_limit: int = 2**30) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self._size_limit = size_limit
        self._inode: int | None = None
        self._reopening = threading.Lock()
        self._cache = self._open()

    def __repr__(self) -> str:
        return f"LocalSearchCache({str(self.directory)!r})"

    @property
    def _db(self) -> Path:
        return self.directory / "cache.db"

    def _open(self) -> diskcache.Cache:
        seen = _inode(self._db)
        try:
            cache = self._connect()
        except sqlite3.DatabaseError as exc:
            if not _is_corruption(exc):
                raise StoreError(
                    f"cannot open the web-search cache in {self.directory}: {exc}"
                ) from exc
            self._move_aside(seen, exc)
            try:
                cache = self._connect()
            except sqlite3.DatabaseError as again:
                raise self._corrupt_error(again) from again
        self._inode = _inode(self._db)
        return cache

    def _connect(self) -> diskcache.Cache:
        try:
            return diskcache.Cache(str(self.directory), size_limit=self._size_limit, timeout=10)
        except OSError as exc:
            raise StoreError(
                f"cannot open the web-search cache in {self.directory}: {exc}"
            ) from exc

    def _corrupt_error(self, exc: BaseException) -> StoreCorruptError:
        return StoreCorruptError(
            f"the web-search cache file {self._db} is not a valid database ({exc}) and could "
            f"not be recovered: move it aside (or delete {self.directory}); it will be "
            "recreated empty"
        )

    def _move_aside(self, failed_inode: int | None, exc: BaseException) -> None:
        """Move the damaged files into ``corrupt-<time>/`` unless another process already did."""
        with _recovering:
            if failed_inode is None or _inode(self._db) != failed_inode:
                return  # already replaced (by this process or another one sharing the directory)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            aside = self.directory / f"corrupt-{stamp}"
            try:
                aside.mkdir()
                for entry in list(self.directory.iterdir()):
                    if entry != aside and not entry.name.startswith("corrupt-"):
                        entry.rename(aside / entry.name)
            except OSError as move_exc:
                raise self._corrupt_error(exc) from move_exc
            logger.warning(
                "web-search cache: %s is not a valid database (%s); moved the cache's files "
                "aside to %s and started an empty cache",
                self._db,
                exc,
                aside,
            )

    def _recover(self, failed: diskcache.Cache, exc: sqlite3.DatabaseError) -> None:
        """Replace the damaged open cache by a fresh one (called when an operation hit it)."""
        with self._reopening:
            if self._cache is not failed:
                return  # another thread of this process already recovered
            failed.close()
            self._move_aside(self._inode, exc)
            self._cache = self._open()

    def _run(self, operation: Callable[[diskcache.Cache], T]) -> T:
        """Run ``operation``; a damaged database is recovered and the operation run again."""
        cache = self._cache
        try:
            return operation(cache)
        except sqlite3.DatabaseError as exc:
            if not _is_corruption(exc):
                raise StoreError(f"web-search cache in {self.directory}: {exc}") from exc
            self._recover(cache, exc)
        try:
            return operation(self._cache)
        except sqlite3.DatabaseError as exc:
            raise self._corrupt_error(exc) from exc

    @staticmethod
    def entry_name(key: str) -> str:
        """The diskcache key under which the entry for ``key`` is stored."""
        return _ENTRY + key

    async def get(self, key: str, now: datetime) -> object | None:
        """The stored payload text if unexpired at ``now``.

        Reads run inline: a WAL-mode SQLite read takes microseconds and never waits on writers.
        """
        return _live(self._run(lambda cache: cache.get(_ENTRY + key)), now)

    async def set(
        self,
        key: str,
        payload: dict[str, Any],
        *,
        expires_at: datetime,
        now: datetime,
        provider: str,
        query: str,
    ) -> None:
        """Store the payload; diskcache drops it on its own once its TTL has passed."""
        value, ttl = _stored(payload, expires_at, now)
        await asyncio.to_thread(self._run, lambda cache: cache.set(_ENTRY + key, value, expire=ttl))

    async def get_many(self, keys: Sequence[str], now: datetime) -> dict[str, object]:
        """Every unexpired payload among ``keys``, read in one diskcache transaction."""

        def run(cache: diskcache.Cache) -> dict[str, object]:
            with cache.transact():
                return {key: cache.get(_ENTRY + key) for key in keys}

        found: dict[str, object] = {}
        for key, value in (self._run(run) if keys else {}).items():
            payload = _live(value, now)
            if payload is not None:
                found[key] = payload
        return found

    async def set_many(self, entries: Sequence[CacheWrite], *, now: datetime) -> None:
        """Store every payload in one diskcache transaction."""
        if not entries:
            return
        values = [(e.key, _stored(e.payload, e.expires_at, now)) for e in entries]

        def run(cache: diskcache.Cache) -> None:
            with cache.transact():
                for key, (value, ttl) in values:
                    cache.set(_ENTRY + key, value, expire=ttl)

        await asyncio.to_thread(self._run, run)

    async def delete(self, key: str) -> None:
        """Remove the entry."""
        await asyncio.to_thread(self._run, lambda cache: cache.delete(_ENTRY + key))

    async def cleanup(self, now: datetime) -> int:
        """Delete entries expired at ``now`` (and whatever diskcache's own clock expired)."""

        def run(cache: diskcache.Cache) -> int:
            removed = int(cache.expire())
            for name in list(cache.iterkeys()):
                if not (isinstance(name, str) and name.startswith(_ENTRY)):
                    continue
                value = cache.get(name)
                expired = not (isinstance(value, tuple) and value[0] > now.timestamp())
                if expired and cache.delete(name):
                    removed += 1
            return removed

        return await asyncio.to_thread(self._run, run)

    async def add_stats(self, namespace: str, delta: CacheStats) -> None:
        """Add ``delta`` in one diskcache transaction (atomic across processes)."""

        def run(cache: diskcache.Cache) -> None:
            prefix = f"{_STATS}{namespace}:"
            with cache.transact():
                for name in STAT_FIELDS:
                    amount = getattr(delta, name)
                    if amount:
                        cache.incr(prefix + name, amount, default=0)
                for name in ("dollars_spent", "dollars_saved"):
                    amount = getattr(delta, name)
                    if amount:
                        current = Decimal(cache.get(prefix + name, "0"))
                        cache.set(prefix + name, str(current + amount))

        await asyncio.to_thread(self._run, run)

    async def load_stats(self, namespace: str) -> CacheStats:
        """The persisted counters."""

        def run(cache: diskcache.Cache) -> CacheStats:
            prefix = f"{_STATS}{namespace}:"
            ints = {name: int(cache.get(prefix + name, 0)) for name in STAT_FIELDS}
            return CacheStats(
                **ints,
                dollars_spent=Decimal(cache.get(prefix + "dollars_spent", "0")),
                dollars_saved=Decimal(cache.get(prefix + "dollars_saved", "0")),
            )

        return await asyncio.to_thread(self._run, run)

    async def aclose(self) -> None:
        """Close the SQLite connection."""
        self._cache.close()


def _stored(
    payload: dict[str, Any], expires_at: datetime, now: datetime
) -> tuple[tuple[float, str], float]:
    """What ``set`` writes for a payload (expiry and JSON text) and diskcache's own TTL."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return (expires_at.timestamp(), text), max(1.0, (expires_at - now).total_seconds())


def _live(value: object, now: datetime) -> object | None:
    """The payload text of a stored value if unexpired at ``now``."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], float):
        expires, text = value
        return None if now.timestamp() >= expires else text
    # Anything else is not what ``set`` writes: hand it over so the caller logs a miss.
    return value if value is None or isinstance(value, str | bytes) else repr(value)
