"""Budget refusals are recognised by the ``is_budget_refusal`` class flag, not a class name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from analysis_pipeline import AnalysisPipeline, BudgetRefusedError, LocalRunStore, PipelineRunError
from analysis_pipeline.testing import OfflineSearch, offline_models
from llm_client import LLMClient

EXAMPLE = Path(__file__).resolve().parents[3] / "examples/bills/EX-AB0042-2026.txt"


class SpendingCapReached(Exception):
    """A sink's refusal with an app-specific name: only the flag says it is a budget refusal."""

    is_budget_refusal = True


class NotABudgetError(Exception):
    """Refuses for another reason; its class name must not make it a budget refusal."""


class BudgetExceededError(Exception):
    """Named like cost-tracker's error but not flagged: the name alone proves nothing."""


class RefusingSink:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def reserve(self, estimate: Any) -> Any:
        raise self.error

    async def settle(self, reservation: Any, record: Any) -> None:
        return None

    async def release(self, reservation: Any) -> None:
        return None


async def _run(tmp_path: Path, error: Exception) -> PipelineRunError:
    async with LLMClient(cost_sink=RefusingSink(error)) as llm:
        pipeline = AnalysisPipeline(llm, OfflineSearch(), store=LocalRunStore(tmp_path))
        try:
            with pytest.raises(PipelineRunError) as failed:
                await pipeline.run(
                    "EX-AB0042-2026", EXAMPLE.read_text(), "Exampleland", offline_models()
                )
            run = await pipeline.store.get_run(failed.value.run_id)
            assert run.status == "failed"
            return failed.value
        finally:
            await pipeline.store.aclose()


async def test_a_flagged_refusal_fails_the_run_as_a_budget_refusal(tmp_path: Path) -> None:
    error = await _run(tmp_path, SpendingCapReached("daily cap of $1 reached"))
    assert isinstance(error, BudgetRefusedError)
    assert "budget refused" in error.reason
    assert "daily cap of $1 reached" in error.reason


@pytest.mark.parametrize("error", [NotABudgetError("no"), BudgetExceededError("by name only")])
async def test_an_unflagged_error_is_not_a_budget_refusal(tmp_path: Path, error: Exception) -> None:
    failed = await _run(tmp_path, error)
    assert not isinstance(failed, BudgetRefusedError)
    assert "budget refused" not in failed.reason
