"""One step registry that the flow, the configuration, the store rows and the CLI all read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from analysis_pipeline import (
    AnalysisPipeline,
    BillAnalysis,
    InvalidInputError,
    LocalRunStore,
    PipelineConfig,
    ReviewCritique,
    StepRecord,
)
from analysis_pipeline._cli import app
from analysis_pipeline._config import PIPELINE_STEPS
from analysis_pipeline._registry import STEP_NAMES, STEPS, spec, step_key
from analysis_pipeline._stores._rows import step_from_row, step_to_row
from analysis_pipeline.testing import OfflineSearch, offline_answer
from llm_client import LLMClient
from pydantic import ValidationError
from typer.testing import CliRunner

EXAMPLE = Path(__file__).resolve().parents[3] / "examples/bills/EX-AB0042-2026.txt"
DRAFT = BillAnalysis(summary="s", impacts=[], overall_confidence=0.5)
CRITIQUE = ReviewCritique(passed=False, score=0.4, critique="c")


def _messages(name: str) -> list[dict[str, str]]:
    text = EXAMPLE.read_text()
    args: dict[str, tuple[Any, ...]] = {
        "research": ("EX", "Exampleland", text, 10),
        "condense": ("EX", "Exampleland", "SEC. 1", 1, 1, text),
        "generate": ("EX", "Exampleland", text, []),
        "review": ("EX", "Exampleland", text, [], DRAFT),
        "refine": ("EX", "Exampleland", text, [], DRAFT, CRITIQUE),
    }
    kwargs = {"complete": True} if name == "research" else {}
    if name in ("generate", "review", "refine"):
        kwargs = {"condensed": False}
    return spec(name).prompt(*args[name], **kwargs)


@pytest.mark.parametrize("name", STEP_NAMES)
def test_every_step_has_a_tagged_prompt_and_an_offline_answer_of_its_schema(name: str) -> None:
    entry = spec(name)
    messages = _messages(name)
    assert messages[0]["content"].startswith(f"Task: {entry.task}.\n")
    answer = offline_answer(messages)
    assert answer is not None
    entry.schema.model_validate(answer)


def test_configuration_keys_and_rows_come_from_the_registry() -> None:
    assert set(PIPELINE_STEPS) == set(STEP_NAMES) == {s.name for s in STEPS}
    lenders = [s.name for s in STEPS]
    for entry in STEPS:  # a borrowing step comes after the step it borrows from
        if entry.borrows is not None:
            assert lenders.index(entry.borrows) < lenders.index(entry.name)
    for entry in STEPS:
        key = step_key(entry.name, 2)
        assert key == (f"{entry.name}:2" if entry.per_round else entry.name)
        record = StepRecord(run_id="r", key=key, step=entry.name, round=2)
        assert step_from_row(step_to_row(record)).key == key
    with pytest.raises(ValidationError):
        StepRecord(run_id="r", key="x", step="summarise")
    with pytest.raises(InvalidInputError, match="steps are " + ", ".join(STEP_NAMES)):
        PipelineConfig(models={"summarise": "m"})


async def test_every_registered_step_gets_a_model_chain(tmp_path: Path) -> None:
    async with LLMClient() as llm, LocalRunStore(tmp_path) as store:
        pipeline = AnalysisPipeline(llm, OfflineSearch(), store=store)
        chains = await pipeline.resolve_models({"generate": "g", "review": "r"})
    assert set(chains) == set(STEP_NAMES)
    for entry in STEPS:
        if entry.name not in ("generate", "review"):
            assert chains[entry.name] == (["g"] if entry.borrows == "generate" else ["test"])


def test_cli_model_option_takes_any_registered_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("OPENROUTER_API_KEY", "ZAI_API_KEY", "LLM_COMMON_DIR"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    base = ["run", str(EXAMPLE), "--bill-id", "EX", "--jurisdiction", "Exampleland", "--json"]
    bad = runner.invoke(app, [*base, "--model", "summarise=x"])
    assert bad.exit_code == 1
    assert "STEP one of " + ", ".join(STEP_NAMES) in bad.stderr
    good = runner.invoke(app, [*base, "--model", "review=test"])
    assert good.exit_code == 0, good.output
    run_id = json.loads(good.stdout)["run_id"]
    shown = runner.invoke(app, ["show", run_id, "--json"])
    assert json.loads(shown.stdout)["models"]["review"] == ["test"]
