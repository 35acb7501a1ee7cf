"""Context budgets: overrides by name or alias, caps, the smallest window of a chain."""

from __future__ import annotations

from analysis_pipeline import PipelineConfig
from analysis_pipeline._context import ContextPlanner
from llm_client import LLMConfig


def test_override_alias_model_info_default_and_cap() -> None:
    config = PipelineConfig(context_tokens={"small": 8192}, default_context_tokens=20_000)
    llm_config = LLMConfig(aliases={"tiny": "small"})
    chains = {"generate": ["openai/gpt-4o-mini"], "review": ["tiny"], "refine": ["unknown/x"]}
    planner = ContextPlanner(config, chains, llm_config)
    assert planner.context_of("small") == 8192
    assert planner.context_of("tiny") == 8192  # through the alias
    assert planner.context_of("openai/gpt-4o-mini") == 128_000  # LiteLLM's map
    assert planner.context_of("unknown/x") == 20_000
    assert planner.step_context("review") == 8192
    reserve = config.prompt_reserve_tokens + config.output_reserve_tokens
    assert planner.analysis_budget == 8192 - reserve - config.draft_reserve_tokens
    assert planner.bill_budget < planner.analysis_budget
    capped = ContextPlanner(PipelineConfig(max_context_tokens=4096), chains, llm_config)
    assert capped.context_of("openai/gpt-4o-mini") == 4096


def test_chain_uses_its_smallest_window() -> None:
    config = PipelineConfig(context_tokens={"a": 100_000, "b": 9000})
    planner = ContextPlanner(config, {"condense": ["a", "b"]})
    assert planner.step_context("condense") == 9000
    assert (
        planner.chunk_tokens == 9000 - config.prompt_reserve_tokens - config.condense_output_tokens
    )
