"""The pipeline on in-process test models: the loop, the verdict rules, resume, model choice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from analysis_pipeline import (
    AnalysisPipeline,
    InvalidInputError,
    LocalRunStore,
    PipelineConfig,
    PipelineRunError,
    ProgressEvent,
)
from analysis_pipeline.testing import (
    OfflineSearch,
    offline_answer,
    offline_handler,
    structured_reply,
)
from llm_client import LLMClient, RetryPolicy
from llm_client.testing import RecordedRequest, Reply, TestModel

EXAMPLE = Path(__file__).resolve().parents[3] / "examples/bills/EX-AB0042-2026.txt"


async def _no_wait(_: float) -> None:  # retries back off without real waiting
    return None


def _reviewer(*verdicts: dict[str, Any], name: str = "reviewer") -> TestModel:
    """A reviewer answering the given verdicts in order, then the offline review."""
    queue = list(verdicts)

    def handle(request: RecordedRequest) -> Reply | None:
        if queue:
            return structured_reply(request.body, queue.pop(0))
        return offline_handler(request)

    return TestModel(handler=handle, name=name)


def _analyst(summary_for: Callable[[str], str] | None = None) -> TestModel:
    """The offline analyst, optionally stamping each analysis's summary by task."""

    def handle(request: RecordedRequest) -> Reply | None:
        answer = offline_answer(request.messages)
        if answer is not None and summary_for is not None and "impacts" in answer:
            system = str(request.messages[0]["content"])
            answer["summary"] = summary_for("refine" if "refine-analysis" in system else "draft")
        return None if answer is None else structured_reply(request.body, answer)

    return TestModel(handler=handle, name="analyst")


def _verdict(passed: bool, score: float, errors: int = 0) -> dict[str, Any]:
    return {
        "passed": passed,
        "score": score,
        "critique": "c",
        "missing_impacts": [] if passed else ["wages impact"],
        "factual_errors": [
            {"claim": "x", "correction": "y", "evidence": "BILL: SEC. 2"} for _ in range(errors)
        ],
    }


_STORES: list[LocalRunStore] = []


@pytest.fixture
async def llm() -> Any:
    async with LLMClient(retry=RetryPolicy(sleep=_no_wait)) as client:
        yield client
    while _STORES:  # the stores the test's pipelines opened
        await _STORES.pop().aclose()


def _pipeline(llm: Any, tmp_path: Path, **config: Any) -> AnalysisPipeline:
    store = LocalRunStore(tmp_path)
    _STORES.append(store)
    return AnalysisPipeline(llm, OfflineSearch(), None, store, config=PipelineConfig(**config))


async def test_run_logs_every_step_and_cites_only_known_sources(llm: Any, tmp_path: Path) -> None:
    pipeline = _pipeline(llm, tmp_path)
    events: list[ProgressEvent] = []
    analyst = _analyst()
    result = await pipeline.run(
        "EX-AB0042-2026",
        EXAMPLE.read_text(),
        "Exampleland",
        {"research": analyst, "generate": analyst, "review": _reviewer()},
        progress=events.append,
    )
    assert result.passed
    assert result.rounds == 1
    assert [s.key for s in result.steps] == ["research", "generate", "review:1"]
    amounts = {str(i.magnitude.amount) for i in result.analysis.impacts if i.magnitude}
    assert {"500", "12"} <= amounts  # the bill's own figures
    known = {s.id for s in result.analysis.sources} | {"BILL"}
    assert all(set(i.cited_source_ids) <= known for i in result.analysis.impacts)
    run = await pipeline.store.get_run(result.run_id)
    assert run.status == "completed"
    assert run.review_passed
    assert run.rounds == 1
    assert run.models["review"] == ["reviewer"]
    assert run.models["generate"] == ["analyst"]
    steps = await pipeline.store.list_steps(result.run_id)
    assert [s.status for s in steps] == ["completed"] * 3
    assert {e.kind for e in events} >= {"started", "finished", "searching"}


async def test_passed_with_factual_errors_counts_as_failed(llm: Any, tmp_path: Path) -> None:
    reviewer = _reviewer(_verdict(True, 0.7, errors=1), _verdict(True, 0.9))
    analyst = _analyst()
    result = await _pipeline(llm, tmp_path).run(
        "EX", EXAMPLE.read_text(), "Exampleland",
        {"research": analyst, "generate": analyst, "review": reviewer},
    )  # fmt: skip
    assert [s.key for s in result.steps][-3:] == ["review:1", "refine:1", "review:2"]
    assert result.passed
    assert result.score == 0.9


async def test_stops_when_the_score_stops_improving(llm: Any, tmp_path: Path) -> None:
    reviewer = _reviewer(*[_verdict(False, 0.5)] * 5)
    analyst = _analyst()
    result = await _pipeline(llm, tmp_path).run(
        "EX", EXAMPLE.read_text(), "Exampleland",
        {"research": analyst, "generate": analyst, "review": reviewer}, max_rounds=4,
    )  # fmt: skip
    assert [s.key for s in result.steps][2:] == ["review:1", "refine:1", "review:2"]
    assert not result.passed


async def test_keeps_the_best_scoring_analysis(llm: Any, tmp_path: Path) -> None:
    reviewer = _reviewer(_verdict(False, 0.6), _verdict(False, 0.4))
    analyst = _analyst(lambda kind: kind)
    result = await _pipeline(llm, tmp_path).run(
        "EX", EXAMPLE.read_text(), "Exampleland",
        {"research": analyst, "generate": analyst, "review": reviewer},
    )  # fmt: skip
    assert result.analysis.summary == "draft"
    assert result.score == 0.6
    assert result.review.score == 0.4


async def test_failure_then_resume_reuses_completed_steps(llm: Any, tmp_path: Path) -> None:
    pipeline = _pipeline(llm, tmp_path)
    analyst = _analyst()
    broken = TestModel(default=Reply.error(500), name="reviewer")
    with pytest.raises(PipelineRunError) as failure:
        await pipeline.run(
            "EX", EXAMPLE.read_text(), "Exampleland",
            {"research": analyst, "generate": analyst, "review": broken},
        )  # fmt: skip
    run_id = failure.value.run_id
    assert failure.value.step == "review"
    run = await pipeline.store.get_run(run_id)
    assert run.status == "failed"
    assert "ServerError" in (run.error or "")
    before = analyst.request_count
    result = await pipeline.resume(run_id, {"research": analyst, "generate": analyst,
                                            "review": _reviewer()})  # fmt: skip
    assert analyst.request_count == before  # research and generate were not asked again
    assert [(s.key, s.reused) for s in result.steps] == [
        ("research", True), ("generate", True), ("review:1", False)
    ]  # fmt: skip
    assert (await pipeline.store.get_run(run_id)).status == "completed"


async def test_model_choice_precedence(llm: Any, tmp_path: Path) -> None:
    pipeline = _pipeline(llm, tmp_path, models={"generate": ["from-config"], "review": "rev"})
    chains = await pipeline.resolve_models()
    assert chains["generate"] == ["from-config"]
    assert chains["refine"] == ["from-config"]
    await pipeline.store.set_model_config("generate", ["from-store", "fallback"])
    chains = await pipeline.resolve_models()
    assert chains["generate"] == ["from-store", "fallback"]
    assert chains["review"] == ["rev"]
    chains = await pipeline.resolve_models({"generate": "explicit"})
    assert chains["generate"] == ["explicit"]
    assert chains["condense"] == ["explicit"]
    assert chains["research"] == ["explicit"]
    chains = await pipeline.resolve_models({"research": ["cheap", "cheaper"]})
    assert chains["research"] == ["cheap", "cheaper"]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("", "text", "CA"), {}),
        (("id", "   ", "CA"), {}),
        (("id", "text", "CA"), {"max_rounds": 0}),
        (("id", "text", "CA"), {"models": {"summarise": "x"}}),
        (("id", "text", "CA"), {"models": {"generate": []}}),
        (("id", "text", "CA"), {"run_id": "not-a-uuid"}),
        (("id", "text", "CA"), {"run_id": "'; drop table pipeline_runs; --"}),
    ],
)
async def test_bad_input_is_a_typed_error(
    llm: Any, tmp_path: Path, args: tuple[str, ...], kwargs: dict[str, Any]
) -> None:
    pipeline = _pipeline(llm, tmp_path)
    with pytest.raises(InvalidInputError):
        await pipeline.run(*args, **kwargs)
    assert await pipeline.store.list_runs() == []


async def test_a_caller_chosen_run_id_is_used_and_never_reused(llm: Any, tmp_path: Path) -> None:
    pipeline = _pipeline(llm, tmp_path)
    analyst = _analyst()
    models = {"research": analyst, "generate": analyst, "review": _reviewer()}
    chosen = "6F9619FF-8B86-D011-B42D-00C04FC964FF"
    result = await pipeline.run("EX-1", EXAMPLE.read_text(), "Exampleland", models, run_id=chosen)
    assert result.run_id == chosen.lower()
    first = await pipeline.store.get_run(chosen.lower())
    assert first.status == "completed"
    # Taken: refused before anything is paid for or stored, the first run left as it was.
    with pytest.raises(InvalidInputError, match="exists already"):
        await pipeline.run("EX-2", "other text", "Exampleland", models, run_id=chosen)
    assert [r.id for r in await pipeline.store.list_runs()] == [chosen.lower()]
    assert (await pipeline.store.get_run(chosen.lower())).bill_id == "EX-1"
