"""Shadow mode: run the app's legacy analyser and the new pipeline on the same bill, serve one.

For a sampled share of requests (``shadow_percent``, a sticky hash of the bill id like the
rollout's, with a salt of its own) :class:`ShadowRunner` runs both arms at once. The caller gets
the arm the rollout flag picks as soon as that arm is done; the other arm (the shadow) keeps
running in a tracked background task under ``shadow_timeout``. When both have ended, one
:class:`~analysis_pipeline.ShadowRecord` with both outcomes, costs and latencies goes to the run
store. The shadow arm's failure, hang or latency never reaches the caller; the served arm's own
error does (it is recorded too). The kill switch also stops shadowing: with the flag switched
off, nothing of the new framework runs.

Impacts are compared by name after :func:`normalise_impact_name`; the new pipeline's impacts are
named by their category (``housing``, ``energy``...), so the app maps its legacy findings onto
those names (see :class:`LegacyResult`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from ._errors import ConfigurationError, PipelineRunError, StoreError
from ._records import ArmStatus, PipelineResult, ShadowArm, ShadowImpact, ShadowRecord
from ._rollout import DEFAULT_FLAG, RolloutFlag, _check_percent, resolve_rollout, rollout

if TYPE_CHECKING:
    from ._pipeline import AnalysisPipeline
    from ._stores import RunStore

__all__ = [
    "SHADOW_SALT",
    "LegacyAnalyser",
    "LegacyResult",
    "Served",
    "ShadowRunner",
    "impacts_of",
    "normalise_impact_name",
]

logger = logging.getLogger(__name__)

SHADOW_SALT = "llm-framework-shadow"
"""Salt of the shadow sample: independent of the rollout's split, sticky per bill."""
Arm = Literal["new", "legacy"]
_ERROR_CHARS = 500
_NON_WORD = re.compile(r"[^0-9a-z]+")
_ARTICLES = frozenset({"a", "an", "the"})


class LegacyResult(BaseModel):
    """What the app's legacy analyser returns, in the shape shadow mode compares.

    Attributes:
        impacts: The impacts it found, each a name and a direction (``increase``,
            ``decrease``, ``mixed``, ``unclear``). Name them as the new pipeline names its
            categories (``housing``, ``energy``, ``taxes``...) where they mean the same.
        cost: What the legacy call cost in US dollars, if the app knows (None otherwise).
        payload: The app's own result object, handed back untouched when the legacy arm is
            served.
    """

    impacts: list[ShadowImpact] = Field(default_factory=list)
    cost: Decimal | None = None
    payload: Any = None


LegacyAnalyser = Callable[[str, str, str], Awaitable[LegacyResult]]
"""The app's legacy analyser: ``async (bill_text, bill_id, jurisdiction) -> LegacyResult``."""


@dataclass(frozen=True, slots=True)
class Served:
    """What :meth:`ShadowRunner.run` hands the caller.

    Attributes:
        arm: The arm served (``new`` or ``legacy``), as the rollout flag picked it.
        result: A :class:`~analysis_pipeline.PipelineResult` (new) or a :class:`LegacyResult`.
        shadow_id: Id of the shadow record being written, or None when not sampled.
    """

    arm: Arm
    result: PipelineResult | LegacyResult
    shadow_id: str | None = None


def normalise_impact_name(name: str) -> str:
    """The key two impacts are matched by: Unicode NFKC, case-folded, every run of characters
    other than ASCII letters and digits as one space, leading articles dropped.

    ``"Housing"``, ``" the housing "`` and ``"HOUSING!"`` all give ``"housing"``; ``"child
    care"`` and ``"childcare"`` do not match.

    Args:
        name: An impact's name as an arm gave it.

    Returns:
        The matching key (may be empty for a name with no letters or digits).
    """
    text = unicodedata.normalize("NFKC", name).casefold()
    words = _NON_WORD.sub(" ", text).split()
    while words and words[0] in _ARTICLES:
        words = words[1:]
    return " ".join(words)


def impacts_of(result: PipelineResult) -> list[ShadowImpact]:
    """The new pipeline's impacts in the compared shape: named by category, with direction."""
    return [ShadowImpact(name=i.category, direction=i.direction) for i in result.analysis.impacts]


def _describe(exc: BaseException) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text[:_ERROR_CHARS]


@dataclass(slots=True)
class _Outcome:
    arm: ShadowArm
    value: PipelineResult | LegacyResult | None = None
    exc: BaseException | None = None


class ShadowRunner:
    """Serve the arm the rollout flag picks; for a sampled share, run the other arm as a shadow.

    Use it as an async context manager (or call :meth:`aclose`): shutting down waits up to
    ``drain_timeout`` for shadow arms still running, then cancels them; either way each one's
    record is written (``cancelled`` when it was cut short).

    Args:
        pipeline: The new pipeline.
        legacy: The app's legacy analyser (:data:`LegacyAnalyser`).
        store: Where flags are read and shadow records written (default: the pipeline's).
        shadow_percent: Share of bills (0..100, sticky by bill id) run on both arms.
        flag: A fixed rollout flag; None resolves it from the store (else the environment)
            per request, cached for ``flag_ttl`` seconds.
        flag_name: The store flag to read (also the rollout's hash salt).
        flag_ttl: Seconds a resolved flag is reused (0: read it for every request).
        shadow_timeout: Seconds the shadow arm may run in the background before it is
            cancelled and recorded as ``timeout``.
        drain_timeout: Seconds :meth:`aclose` waits for shadow arms before cancelling them.
        models: Models for the new arm (as ``AnalysisPipeline.run`` takes them).
        max_rounds: Review rounds of the new arm.
        environ: Environment mapping used when the store holds no flag row.

    Raises:
        ConfigurationError: A percent outside 0..100 or a timeout that is not positive.

    Example:
        >>> async with ShadowRunner(pipeline, legacy_analyse, shadow_percent=20) as shadow:
        ...     served = await shadow.run("CA-AB1482-2019", text, "California")
    """

    def __init__(
        self,
        pipeline: AnalysisPipeline,
        legacy: LegacyAnalyser,
        *,
        store: RunStore | None = None,
        shadow_percent: float = 10.0,
        flag: RolloutFlag | None = None,
        flag_name: str = DEFAULT_FLAG,
        flag_ttl: float = 5.0,
        shadow_timeout: float = 120.0,
        drain_timeout: float = 30.0,
        models: dict[str, Any] | None = None,
        max_rounds: int = 2,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        try:
            self.shadow_percent = _check_percent(shadow_percent)
        except ValueError as exc:
            raise ConfigurationError(f"shadow_percent: {exc}") from None
        if shadow_timeout <= 0 or drain_timeout < 0 or flag_ttl < 0:
            raise ConfigurationError("shadow_timeout must be positive, drain/flag times >= 0")
        self.pipeline = pipeline
        self.legacy = legacy
        self.store: RunStore = store if store is not None else pipeline.store
        self.flag = flag
        self.flag_name = flag_name
        self.flag_ttl = flag_ttl
        self.shadow_timeout = shadow_timeout
        self.drain_timeout = drain_timeout
        self.models = models
        self.max_rounds = max_rounds
        self.environ = environ
        self._cached: tuple[float, RolloutFlag] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def __aenter__(self) -> ShadowRunner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def pending(self) -> int:
        """Shadow records not yet written (arms still running in the background)."""
        return len(self._tasks)

    async def current_flag(self) -> RolloutFlag:
        """The rollout flag in force (the fixed one, else the store's, else the environment's).

        When the store cannot be read (an outage, or its tables rolled back) the last flag
        read is kept, else the environment's is used, and a warning is logged: serving does
        not stop for it.
        """
        if self.flag is not None:
            return self.flag
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self.flag_ttl:
            return self._cached[1]
        try:
            flag = await resolve_rollout(self.store, name=self.flag_name, environ=self.environ)
        except StoreError as exc:
            # Serving must not stop because the flag's store is down (or its tables were
            # rolled back): keep the last flag read, else the environment's.
            fallback = (
                self._cached[1]
                if self._cached is not None
                else RolloutFlag.from_env(self.environ, salt=self.flag_name)
            )
            logger.warning(
                "rollout flag %r not readable from the store (%s); using the %s flag",
                self.flag_name, _describe(exc), "last read" if self._cached else "environment's",
            )  # fmt: skip
            return fallback
        self._cached = (now, flag)
        return flag

    def sampled(self, bill_id: str) -> bool:
        """Whether ``bill_id`` is in the shadow sample (sticky, independent of the rollout)."""
        return rollout(bill_id, self.shadow_percent, salt=SHADOW_SALT)

    async def run(self, bill_id: str, bill_text: str, jurisdiction: str) -> Served:
        """Analyse a bill with the arm the flag picks; shadow the other arm when sampled.

        Args:
            bill_id: The bill (the rollout and the shadow sample hash it).
            bill_text: Its text.
            jurisdiction: Its jurisdiction.

        Returns:
            The served arm's result, as soon as that arm is done (never waiting on the shadow).

        Raises:
            ConfigurationError: The runner is closed.
            Exception: Whatever the served arm raised (also recorded when sampled).
        """
        if self._closed:
            raise ConfigurationError("this ShadowRunner is closed")
        flag = await self.current_flag()
        served: Arm = "new" if flag.routes(bill_id) else "legacy"
        # The kill switch stops the new framework entirely, shadow runs included.
        if flag.enabled is False or not self.sampled(bill_id):
            result = await self._call(served, bill_id, bill_text, jurisdiction)
            return Served(served, result)
        record = ShadowRecord(
            bill_id=bill_id,
            jurisdiction=jurisdiction,
            served=served,
            new=ShadowArm(status="cancelled"),
            legacy=ShadowArm(status="cancelled"),
        )
        shadow: Arm = "legacy" if served == "new" else "new"
        shadow_task = asyncio.create_task(
            self._measure(shadow, bill_id, bill_text, jurisdiction, self.shadow_timeout),
            name=f"shadow-{shadow}-{bill_id}",
        )
        try:
            outcome = await self._measure(served, bill_id, bill_text, jurisdiction, None)
        except asyncio.CancelledError:
            cut = _Outcome(ShadowArm(status="cancelled", error="the caller cancelled"))
            self._track(self._finish(record, served, cut, shadow_task))
            raise
        self._track(self._finish(record, served, outcome, shadow_task))
        if outcome.exc is not None:
            raise outcome.exc
        assert outcome.value is not None
        return Served(served, outcome.value, record.id)

    async def _call(
        self, arm: Arm, bill_id: str, bill_text: str, jurisdiction: str
    ) -> PipelineResult | LegacyResult:
        if arm == "new":
            return await self.pipeline.run(
                bill_id, bill_text, jurisdiction, self.models, self.max_rounds
            )
        result = await self.legacy(bill_text, bill_id, jurisdiction)
        if not isinstance(result, LegacyResult):
            raise ConfigurationError(
                f"the legacy analyser returned {type(result).__name__}, not a LegacyResult"
            )
        return result

    async def _measure(
        self, arm: Arm, bill_id: str, bill_text: str, jurisdiction: str, limit: float | None
    ) -> _Outcome:
        """Run one arm; its failure becomes the outcome (raised again for the served arm)."""
        start = time.perf_counter()

        def spent() -> float:
            return (time.perf_counter() - start) * 1000

        scope = asyncio.timeout(limit)
        try:
            async with scope:
                value = await self._call(arm, bill_id, bill_text, jurisdiction)
        except TimeoutError as exc:
            if not scope.expired():  # the arm's own timeout: an error like any other
                return _Outcome(self._failed(arm, "error", exc, spent()), exc=exc)
            message = f"the {arm} arm ran past shadow_timeout={limit:g} s and was cancelled"
            return _Outcome(ShadowArm(status="timeout", error=message, latency_ms=spent()))
        except asyncio.CancelledError:
            if limit is None:
                raise
            arm_state = ShadowArm(status="cancelled", error="shut down", latency_ms=spent())
            return _Outcome(arm_state)
        except Exception as exc:
            return _Outcome(self._failed(arm, "error", exc, spent()), exc=exc)
        if isinstance(value, PipelineResult):
            state = ShadowArm(
                status="ok",
                cost=value.total_cost,
                latency_ms=spent(),
                impacts=impacts_of(value),
                run_id=value.run_id,
            )
        else:
            state = ShadowArm(
                status="ok", cost=value.cost, latency_ms=spent(), impacts=value.impacts
            )
        return _Outcome(state, value=value)

    @staticmethod
    def _failed(arm: Arm, status: ArmStatus, exc: BaseException, latency_ms: float) -> ShadowArm:
        run_id = exc.run_id if isinstance(exc, PipelineRunError) and arm == "new" else None
        return ShadowArm(status=status, error=_describe(exc), latency_ms=latency_ms, run_id=run_id)

    def _track(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(
        self,
        record: ShadowRecord,
        served: Arm,
        served_outcome: _Outcome,
        shadow_task: asyncio.Task[_Outcome],
    ) -> None:
        """Wait for the shadow arm (bounded by its timeout), then write the record once."""
        try:
            shadow_outcome = await asyncio.shield(shadow_task)
        except asyncio.CancelledError:
            shadow_task.cancel()  # shutdown: the shadow arm records itself as cancelled
            (ended,) = await asyncio.gather(shadow_task, return_exceptions=True)
            shadow_outcome = (
                ended
                if isinstance(ended, _Outcome)
                else _Outcome(ShadowArm(status="cancelled", error="shut down"))
            )
        shadow: Arm = "legacy" if served == "new" else "new"
        arms = {served: served_outcome.arm, shadow: shadow_outcome.arm}
        final = record.model_copy(update={"new": arms["new"], "legacy": arms["legacy"]})
        try:
            await self.store.record_shadow(final)
        except Exception as exc:  # recording must never break serving; say so in the log
            logger.warning("shadow record for %s not written: %s", record.bill_id, _describe(exc))

    async def drain(self) -> None:
        """Wait until every shadow record of the runs so far is written."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Stop taking runs; wait up to ``drain_timeout`` for shadow arms, cancel the rest.

        Every started shadow run still gets its record (``cancelled`` for a cut arm). The
        pipeline and the store stay open (they are the app's).
        """
        self._closed = True
        if not self._tasks:
            return
        try:
            async with asyncio.timeout(self.drain_timeout):
                await self.drain()
        except TimeoutError:
            for task in list(self._tasks):
                task.cancel()
            await self.drain()
