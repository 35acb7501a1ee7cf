"""A local journal of paid step results the run store could not take.

When a step has been paid for and the run store is unreachable at that moment, its record is
written here (one JSON file per step, written atomically, under the state directory) before the
run fails. ``resume`` hands journaled steps to the store first and re-uses them, so a store
outage never makes a step be paid for twice, even if the process exits or crashes meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from pathlib import Path

from ._errors import StoreError
from ._records import StepRecord
from ._stores import RunStore

__all__ = ["StepJournal"]

logger = logging.getLogger(__name__)
_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")


class StepJournal:
    """Step records waiting for the run store, one file per ``<run id>/<step key>.json``.

    Args:
        directory: Where the journal lives (``<state dir>/pipeline-journal`` by default).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __repr__(self) -> str:
        return f"StepJournal({str(self.directory)!r})"

    def _run_dir(self, run_id: str) -> Path | None:
        # Run ids are UUIDs; anything else cannot be a journaled run (and never a path).
        return self.directory / run_id if _SAFE.match(run_id) else None

    def _path(self, record: StepRecord) -> Path | None:
        folder = self._run_dir(record.run_id)
        return None if folder is None else folder / f"{record.key.replace(':', '_')}.json"

    def _write(self, record: StepRecord) -> Path:
        path = self._path(record)
        if path is None:
            raise StoreError(f"cannot journal a step of run {record.run_id!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        with partial.open("w", encoding="utf-8") as out:
            out.write(record.model_dump_json())
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)  # a crash leaves the old file or the new one, never half
        return path

    async def keep(self, record: StepRecord) -> Path:
        """Write ``record`` durably; return its file.

        Raises:
            StoreError: The journal could not be written either.
        """
        try:
            return await asyncio.to_thread(self._write, record)
        except OSError as exc:
            raise StoreError(f"cannot write the step journal {self.directory}: {exc}") from exc

    def pending(self, run_id: str) -> list[StepRecord]:
        """The journaled steps of ``run_id``, in the order they started."""
        folder = self._run_dir(run_id)
        if folder is None or not folder.is_dir():
            return []
        records = []
        for path in folder.glob("*.json"):
            try:
                records.append(StepRecord.model_validate_json(path.read_text(encoding="utf-8")))
            except (OSError, ValueError) as exc:
                logger.warning("skipping unreadable journal file %s: %s", path, exc)
        return sorted(records, key=lambda r: r.started_at)

    async def flush(self, store: RunStore, run_id: str) -> list[StepRecord]:
        """Save every journaled step of ``run_id`` to ``store``, forgetting each once saved.

        Returns:
            The steps handed over.

        Raises:
            StoreError: The store failed; the steps not yet saved stay journaled.
        """
        saved = []
        for record in self.pending(run_id):
            await store.save_step(record)
            path = self._path(record)
            if path is not None:
                path.unlink(missing_ok=True)
            saved.append(record)
            logger.info("run %s: journaled step %s handed to the store", run_id, record.key)
        folder = self._run_dir(run_id)
        if saved and folder is not None:
            with contextlib.suppress(OSError):  # not empty (a new entry) or already gone
                folder.rmdir()
        return saved
