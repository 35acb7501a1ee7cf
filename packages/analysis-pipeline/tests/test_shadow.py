"""Shadow mode on every run-store backend: the served arm is never held up by the shadow arm.

No wall-clock asserts: "on time" means the served result comes back while the shadow arm is
still running (its task pending, its coroutine not finished), which a runner that waited on the
shadow could never do.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from analysis_pipeline import (
    AnalysisPipeline,
    ConfigurationError,
    LegacyResult,
    PipelineConfig,
    PipelineResult,
    PipelineRunError,
    RolloutFlag,
    RunStore,
    ShadowImpact,
    ShadowRunner,
    normalise_impact_name,
)
from analysis_pipeline.testing import OfflineSearch, offline_legacy_analyser, offline_models
from llm_client import LLMClient, RetryPolicy
from llm_client.testing import RecordedRequest, Reply, TestModel

from .conftest import BILLS

BILL_ID = "CA-AB1482-2019"
TEXT = (BILLS / f"{BILL_ID}.txt").read_text(encoding="utf-8")
ON = RolloutFlag(0, enabled=None, salt="t")  # percent decides; overridden per test


async def _no_wait(_: float) -> None:
    return None


@pytest.fixture
async def pipeline(store: RunStore, tmp_path: Path) -> AsyncIterator[AnalysisPipeline]:
    async with LLMClient(retry=RetryPolicy(sleep=_no_wait)) as llm:
        config = PipelineConfig(journal_dir=tmp_path / "journal")
        yield AnalysisPipeline(llm, OfflineSearch(), store=store, config=config)
    await store.aclose()


class Legacy:
    """A scriptable legacy analyser: answers, raises, or hangs until cancelled."""

    def __init__(self, mode: str = "answer") -> None:
        self.mode = mode
        self.release = asyncio.Event()  # a hanging legacy arm waits for this (or cancellation)
        self.started = asyncio.Event()
        self.finished = False
        self.cancelled = False
        self.calls = 0

    async def __call__(self, bill_text: str, bill_id: str, jurisdiction: str) -> LegacyResult:
        self.calls += 1
        self.started.set()
        try:
            if self.mode == "raise":
                raise RuntimeError("legacy analyser crashed")
            if self.mode == "hang":
                await self.release.wait()
            result = await offline_legacy_analyser(bill_text, bill_id, jurisdiction)
            return result.model_copy(update={"cost": Decimal("0.0021")})
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        finally:
            self.finished = True


def _runner(pipeline: AnalysisPipeline, legacy: Legacy, **options: Any) -> ShadowRunner:
    options.setdefault("flag", RolloutFlag(100, salt="t"))
    options.setdefault("shadow_percent", 100)
    return ShadowRunner(pipeline, legacy, models=offline_models(), **options)


async def test_legacy_arm_that_raises_serves_new_and_records_the_failure(
    pipeline: AnalysisPipeline, store: RunStore
) -> None:
    legacy = Legacy("raise")
    async with _runner(pipeline, legacy) as runner:
        served = await runner.run(BILL_ID, TEXT, "California")
        assert served.arm == "new"
        assert isinstance(served.result, PipelineResult)
        await runner.drain()
    (record,) = await store.shadow_results()
    assert record.id == served.shadow_id
    assert (record.served, record.bill_id) == ("new", BILL_ID)
    assert record.new.status == "ok"
    assert record.new.run_id == served.result.run_id
    assert record.new.cost == served.result.total_cost
    assert {i.name for i in record.new.impacts} == {
        i.category for i in served.result.analysis.impacts
    }
    assert record.legacy.status == "error"
    assert record.legacy.error == "RuntimeError: legacy analyser crashed"
    assert record.legacy.impacts == []


async def test_legacy_arm_that_hangs_does_not_hold_up_the_served_new_arm(
    pipeline: AnalysisPipeline, store: RunStore
) -> None:
    legacy = Legacy("hang")
    async with _runner(pipeline, legacy, shadow_timeout=3600) as runner:
        served = await runner.run(BILL_ID, TEXT, "California")
        # Served while the legacy arm is still hanging in the background:
        assert isinstance(served.result, PipelineResult)
        assert legacy.started.is_set()
        assert not legacy.finished
        assert runner.pending == 1
        assert await store.shadow_results() == []  # recorded once both arms have ended
        legacy.release.set()
        await runner.drain()
        assert runner.pending == 0
    (record,) = await store.shadow_results()
    assert (record.served, record.new.status, record.legacy.status) == ("new", "ok", "ok")
    assert [i.name for i in record.legacy.impacts] == ["Housing"]


async def test_legacy_arm_that_hangs_past_the_timeout_is_cancelled_and_recorded(
    pipeline: AnalysisPipeline, store: RunStore
) -> None:
    legacy = Legacy("hang")
    async with _runner(pipeline, legacy, shadow_timeout=0.3) as runner:
        served = await runner.run(BILL_ID, TEXT, "California")
        assert isinstance(served.result, PipelineResult)
        await runner.drain()
        assert legacy.cancelled  # the timeout cancelled it: no task left behind
        assert runner.pending == 0
    (record,) = await store.shadow_results()
    assert (record.served, record.new.status, record.legacy.status) == ("new", "ok", "timeout")
    assert record.legacy.error is not None
    assert "shadow_timeout=0.3 s" in record.legacy.error
    assert record.legacy.latency_ms >= 300


async def test_shutdown_cancels_a_hung_shadow_and_still_records_it(
    pipeline: AnalysisPipeline, store: RunStore
) -> None:
    legacy = Legacy("hang")
    runner = _runner(pipeline, legacy, shadow_timeout=3600, drain_timeout=0.05)
    await runner.run(BILL_ID, TEXT, "California")
    assert runner.pending == 1
    await runner.aclose()
    assert runner.pending == 0
    assert legacy.cancelled
    (record,) = await store.shadow_results()
    assert (record.new.status, record.legacy.status) == ("ok", "cancelled")
    with pytest.raises(ConfigurationError, match="closed"):
        await runner.run(BILL_ID, TEXT, "California")


async def test_new_arm_failing_in_the_shadow_never_reaches_the_legacy_caller(
    pipeline: AnalysisPipeline, store: RunStore
) -> None:
    def refuse(_: RecordedRequest) -> Reply:
        return Reply.error(400)

    broken = {**offline_models(), "generate": TestModel(handler=refuse, name="broken")}
    legacy = Legacy()
    runner = ShadowRunner(
        pipeline, legacy, flag=RolloutFlag(0, salt="t"), shadow_percent=100, models=broken
    )
    async with runner:
        served = await runner.run(BILL_ID, TEXT, "California")
    assert served.arm == "legacy"
    assert isinstance(served.result, LegacyResult)
    assert served.result.payload == {"impacts": [{"name": "Housing", "direction": "decrease"}]}
    (record,) = await store.shadow_results()
    assert (record.served, record.legacy.status, record.new.status) == ("legacy", "ok", "error")
    assert record.legacy.cost == Decimal("0.0021")
    assert record.new.run_id is not None  # the failed pipeline run, resumable
    assert (await store.get_run(record.new.run_id)).status == "failed"


async def test_the_served_arms_own_error_reaches_the_caller_and_is_recorded(
    pipeline: AnalysisPipeline, store: RunStore
) -> None:
    def refuse(_: RecordedRequest) -> Reply:
        return Reply.error(400)

    broken = {**offline_models(), "generate": TestModel(handler=refuse, name="broken")}
    runner = ShadowRunner(
        pipeline, Legacy(), flag=RolloutFlag(100, salt="t"), shadow_percent=100, models=broken
    )
    async with runner:
        with pytest.raises(PipelineRunError):
            await runner.run(BILL_ID, TEXT, "California")
    (record,) = await store.shadow_results()
    assert (record.served, record.new.status, record.legacy.status) == ("new", "error", "ok")


async def test_kill_switch_runs_only_legacy_and_no_shadow(
    pipeline: AnalysisPipeline, store: RunStore
) -> None:
    legacy = Legacy()
    runner = _runner(pipeline, legacy, flag=RolloutFlag(100, salt="t", enabled=False))
    async with runner:
        served = await runner.run(BILL_ID, TEXT, "California")
    assert served.arm == "legacy"
    assert served.shadow_id is None
    assert legacy.calls == 1
    assert await store.list_runs() == []  # the new framework never ran, not even as a shadow
    assert await store.shadow_results() == []


async def test_store_flag_wins_over_env_and_a_flip_applies_without_restart(
    pipeline: AnalysisPipeline, store: RunStore
) -> None:
    legacy = Legacy()
    env = {"USE_NEW_LLM_FRAMEWORK": "true"}
    runner = ShadowRunner(
        pipeline, legacy, shadow_percent=0, flag_ttl=0, environ=env, models=offline_models()
    )
    async with runner:
        assert (await runner.run(BILL_ID, TEXT, "California")).arm == "new"  # env: on
        await store.set_flag("llm-framework", enabled=False, percent=None, changed_by="ops")
        assert (await runner.run(BILL_ID, TEXT, "California")).arm == "legacy"  # store: off
        flag = await runner.current_flag()
        assert (flag.source, flag.enabled) == ("store", False)
    assert legacy.calls == 1


async def test_unsampled_bills_run_one_arm_only(
    pipeline: AnalysisPipeline, store: RunStore
) -> None:
    legacy = Legacy()
    async with _runner(pipeline, legacy, flag=RolloutFlag(0, salt="t"), shadow_percent=0) as r:
        served = await r.run(BILL_ID, TEXT, "California")
    assert (served.arm, served.shadow_id, legacy.calls) == ("legacy", None, 1)
    assert await store.list_runs() == []
    assert await store.shadow_results() == []


@pytest.mark.parametrize(
    ("raw", "key"),
    [("Housing", "housing"), (" the  HOUSING! ", "housing"), ("Ｈｏｕｓｉｎｇ", "housing"),
     ("Child-care costs", "child care costs"), ("An energy", "energy"), ("...", "")],
)  # fmt: skip
def test_impact_names_normalise(raw: str, key: str) -> None:
    assert normalise_impact_name(raw) == key
    assert ShadowImpact(name=raw, direction="unclear").name == raw  # stored as given


def test_bad_runner_settings_are_configuration_errors(tmp_path: Path) -> None:
    pipeline: Any = object()
    with pytest.raises(ConfigurationError):
        ShadowRunner(pipeline, Legacy(), store=pipeline, shadow_percent=150)
    with pytest.raises(ConfigurationError):
        ShadowRunner(pipeline, Legacy(), store=pipeline, shadow_timeout=0)


async def test_a_store_without_its_flag_table_falls_back_to_the_env(
    postgres_db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import psycopg
    from analysis_pipeline import PostgresRunStore

    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute("drop table pipeline_flags cascade")  # rolled back while apps still run
    store = PostgresRunStore(postgres_db)
    async with LLMClient(retry=RetryPolicy(sleep=_no_wait)) as llm:
        pipeline = AnalysisPipeline(
            llm, OfflineSearch(), store=store, config=PipelineConfig(journal_dir=tmp_path)
        )
        legacy = Legacy()
        env = {"USE_NEW_LLM_FRAMEWORK": "false", "USE_NEW_LLM_FRAMEWORK_PERCENTAGE": "100"}
        async with ShadowRunner(pipeline, legacy, shadow_percent=0, environ=env) as runner:
            served = await runner.run(BILL_ID, TEXT, "California")
    await store.aclose()
    assert (served.arm, legacy.calls) == ("legacy", 1)
    assert "not readable from the store" in caplog.text
