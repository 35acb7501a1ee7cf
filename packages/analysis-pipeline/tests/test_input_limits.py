"""Broken or oversized input: a typed error (or one CLI line) before anything is paid or stored."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from analysis_pipeline import (
    AnalysisPipeline,
    InputTooLargeError,
    InvalidInputError,
    LocalRunStore,
    PipelineConfig,
)
from analysis_pipeline.testing import OfflineSearch, offline_handler
from llm_client import LLMClient, LLMConfig, ProviderSettings
from llm_client.testing import FakeLLMServer, TestModel

EXAMPLE = Path(__file__).resolve().parents[3] / "examples/bills/EX-AB0042-2026.txt"


def _models(model: Any) -> dict[str, Any]:
    return {"research": model, "generate": model, "review": model}


async def _refused(tmp_path: Path, text: str, config: PipelineConfig) -> tuple[Any, Exception]:
    model = TestModel(handler=offline_handler, name="analyst")
    async with LLMClient() as llm:
        store = LocalRunStore(tmp_path)
        pipeline = AnalysisPipeline(llm, OfflineSearch(), store=store, config=config)
        try:
            with pytest.raises(InvalidInputError) as failed:
                await pipeline.run("EX-AB0042-2026", text, "Exampleland", _models(model))
            assert await store.list_runs() == []  # nothing stored
        finally:
            await store.aclose()
    assert model.request_count == 0  # nothing paid
    return model, failed.value


@pytest.mark.parametrize(
    "text", ["SEC. 1. A fee of $5 \ud800 applies.", "\udcff\udcfe", "ok", "   \n\t"]
)
async def test_invalid_unicode_or_empty_bill_text_is_refused(tmp_path: Path, text: str) -> None:
    if text == "ok":  # lone surrogates in the other arguments too
        model = TestModel(handler=offline_handler, name="analyst")
        async with LLMClient() as llm:
            pipeline = AnalysisPipeline(llm, OfflineSearch(), store=LocalRunStore(tmp_path))
            with pytest.raises(InvalidInputError, match="jurisdiction is not valid Unicode"):
                await pipeline.run("EX", EXAMPLE.read_text(), "Example\udc80", _models(model))
            await pipeline.store.aclose()
        assert model.request_count == 0
        return
    _, error = await _refused(tmp_path, text, PipelineConfig())
    assert not isinstance(error, InputTooLargeError)
    assert "bill_text" in str(error)


async def test_a_bill_over_the_size_cap_is_refused_before_paying(tmp_path: Path) -> None:
    bill = EXAMPLE.read_text()
    huge = bill * (2_000_001 // len(bill) + 1)  # over the 2 MB default
    _, error = await _refused(tmp_path, huge, PipelineConfig())
    assert isinstance(error, InputTooLargeError)
    assert error.limit == 2_000_000
    assert error.actual == len(huge)
    assert "max_bill_chars" in str(error)


def _long_bill(sections: int) -> str:
    body = " ".join(
        f"The fee for permit class {i} is ${i}.00 per year, payable by every applicant."
        for i in range(40)
    )
    return "\n".join(f"SEC. {n}. {body}" for n in range(1, sections + 1))


async def test_condense_call_cap_is_checked_before_paying(tmp_path: Path) -> None:
    config = PipelineConfig(max_context_tokens=4800, max_condense_calls=5)
    _, error = await _refused(tmp_path, _long_bill(12), config)
    assert isinstance(error, InputTooLargeError)
    assert error.limit == 5
    assert isinstance(error.actual, int)
    assert error.actual > 5
    assert "max_condense_calls" in str(error)


async def test_condense_dollar_cap_is_checked_before_paying(tmp_path: Path) -> None:
    with FakeLLMServer() as server:
        server.handler = offline_handler
        config = PipelineConfig(max_context_tokens=4800, max_condense_cost=Decimal("0.0001"))
        settings = LLMConfig(providers={"openai": ProviderSettings(base_url=server.base_url)})
        async with LLMClient(config=settings) as llm:
            pipeline = AnalysisPipeline(
                llm, OfflineSearch(), store=LocalRunStore(tmp_path), config=config
            )
            with pytest.raises(InputTooLargeError, match="max_condense_cost") as failed:
                await pipeline.run(
                    "EX", _long_bill(12), "Exampleland", _models("openai/gpt-4o-mini")
                )
            assert failed.value.limit == Decimal("0.0001")
            assert isinstance(failed.value.actual, Decimal)
            assert failed.value.actual > Decimal("0.0001")
            assert await pipeline.store.list_runs() == []
            await pipeline.store.aclose()
        assert server.requests == []  # not one paid call


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENROUTER_API_KEY", "ZAI_API_KEY")}
    env.pop("LLM_COMMON_DIR", None)
    return subprocess.run(
        [sys.executable, "-c", "from analysis_pipeline._cli import app; app()", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("SEC. 1. Le loyer est plafonné à 500 €.".encode("latin-1", "replace"), "not UTF-8"),
        (b"", "is empty: it holds no bill text"),
        (b"  \n\n ", "is empty: it holds no bill text"),
    ],
)
def test_cli_rejects_a_broken_bill_file_with_one_line(
    tmp_path: Path, content: bytes, needle: str
) -> None:
    bill = tmp_path / "bill.txt"
    bill.write_bytes(content)
    done = _cli(tmp_path, "run", str(bill), "--bill-id", "EX-1", "--jurisdiction", "Exampleland")
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert needle in lines[0]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / ".llm-common").exists()  # refused before the stores were opened
