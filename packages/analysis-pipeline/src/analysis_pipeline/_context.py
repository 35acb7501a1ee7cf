"""Token budgets: how much bill and research fit each model's context window."""

from __future__ import annotations

import functools
from typing import Any

import llm_client

from ._config import PipelineConfig

__all__ = ["ContextPlanner"]


class ContextPlanner:
    """Works out context budgets for one run's model chains.

    A step's context is the smallest window in its fallback chain (any model of the chain may
    end up answering). A model's window comes from ``config.context_tokens`` (by the name given
    or its resolved alias), else ``llm_client.model_info``, else ``config.default_context_tokens``.

    Args:
        config: Pipeline settings.
        chains: Step name to model chain.
        llm_config: llm-client's configuration (for alias resolution), if any.
    """

    def __init__(
        self, config: PipelineConfig, chains: dict[str, list[Any]], llm_config: Any = None
    ) -> None:
        self.config = config
        self.chains = chains
        self.llm_config = llm_config
        first = chains.get("generate", ["test"])[0]
        self.count_model = first if isinstance(first, str) else None
        self._count = functools.lru_cache(maxsize=4096)(self._count_uncached)

    def _resolve(self, name: str) -> str:
        resolve = getattr(self.llm_config, "resolve_alias", None)
        if resolve is None:
            return name
        try:
            return str(resolve(name))
        except Exception:  # an alias cycle surfaces when the call is made, with its own error
            return name

    def context_of(self, model: Any) -> int:
        """Context window (input tokens) of one model, capped by ``max_context_tokens``."""
        window = self._window(model)
        cap = self.config.max_context_tokens
        return window if cap is None else min(window, cap)

    def _window(self, model: Any) -> int:
        overrides = self.config.context_tokens
        name = model if isinstance(model, str) else getattr(model, "name", None)
        if not isinstance(name, str):
            return self.config.default_context_tokens
        resolved = self._resolve(name)
        for candidate in (name, resolved):
            if candidate in overrides:
                return overrides[candidate]
        try:
            known = llm_client.model_info(resolved).max_input_tokens
        except Exception:  # unknown to every price map: fall back to the configured default
            known = None
        return known or self.config.default_context_tokens

    def step_context(self, step: str) -> int:
        """Smallest context window in ``step``'s chain."""
        return min(self.context_of(m) for m in self.chains.get(step, ["test"]))

    def _count_uncached(self, text: str) -> int:
        return llm_client.count_tokens(text, model=self.count_model)

    def count(self, text: str) -> int:
        """Tokens of ``text`` for the generate model."""
        return self._count(text)

    @property
    def analysis_budget(self) -> int:
        """Tokens for bill plus sources in generate, review and refine prompts."""
        c = self.config
        window = min(self.step_context(s) for s in ("generate", "review", "refine"))
        reserve = c.prompt_reserve_tokens + c.output_reserve_tokens + c.draft_reserve_tokens
        return max(window - reserve, 0)

    @property
    def bill_budget(self) -> int:
        """Tokens the bill may take before it must be condensed."""
        return int(self.analysis_budget * (1 - self.config.min_source_share))

    @property
    def chunk_tokens(self) -> int:
        """Tokens of bill text per condense call."""
        c = self.config
        return max(
            self.step_context("condense") - c.prompt_reserve_tokens - c.condense_output_tokens, 256
        )

    @property
    def query_budget(self) -> int:
        """Tokens of bill text the query-proposal call may read."""
        c = self.config
        return max(self.step_context("research") - c.prompt_reserve_tokens - 800, 256)
