"""Process tuning for a long-running async service that makes many LLM and search calls.

The openai SDK, instructor and pydantic leave ~145,000 objects tracked by the garbage collector
after start-up (the SDK alone imports ~780 modules of typed models). CPython's default
collector re-walks all of them in every full collection (~100-150 ms with the event loop
stopped) and runs a young collection every 700 allocations; under ten concurrent pipeline runs
that was ~20% of the process's CPU in ``bench/pipeline.py``. :func:`prepare_for_serving` is the
standard remedy (``gc.freeze``, as Instagram's and Gunicorn's preloaded apps use it, and a
larger young generation, as CPython 3.13 itself chose).
"""

from __future__ import annotations

import gc
import importlib
from dataclasses import dataclass

__all__ = ["GcSettings", "prepare_for_serving"]

# What llm-client imports on an OpenAI-compatible call's first use (LiteLLM, which only other
# providers load, is left out: importing it costs seconds).
_SERVING_MODULES = (
    "llm_client._client",
    "llm_client._structured",
    "openai",
    "openai.types.chat",
    "instructor",
    "instructor.v2.core.function_calls",
    "httpx_aiohttp",
)


@dataclass(frozen=True, slots=True)
class GcSettings:
    """What :func:`prepare_for_serving` did.

    Attributes:
        frozen: Objects moved to the permanent generation (never scanned again).
        thresholds: The collector's thresholds now in force.
        previous_thresholds: The thresholds before the call.
    """

    frozen: int
    thresholds: tuple[int, int, int]
    previous_thresholds: tuple[int, int, int]


def prepare_for_serving(*, young_threshold: int = 10_000, preload: bool = True) -> GcSettings:
    """Tune the garbage collector once start-up is done (clients built).

    Imports what llm-client loads on first use (``preload``: the openai SDK, instructor), so
    the first request does not pay for it and its objects are frozen too. Collects once, then
    freezes every surviving object (module-level SDK types, pricing tables,
    compiled schemas: they live as long as the process anyway) so later collections skip them,
    and raises the young-generation threshold from 700 to ``young_threshold`` allocations.
    Garbage made afterwards is collected as usual. Call it from an app's lifespan or a CLI's
    entry point; calling it again freezes what was added since.

    Args:
        young_threshold: Allocations between young collections (CPython's default is 700).
        preload: Import llm-client's lazily loaded modules first.

    Returns:
        What was done, for a start-up log line.

    Raises:
        ValueError: ``young_threshold`` is below 1.

    Example:
        >>> settings = prepare_for_serving()
        >>> settings.frozen > 0
        True
    """
    if young_threshold < 1:
        raise ValueError("young_threshold must be at least 1")
    if preload:
        for name in _SERVING_MODULES:
            importlib.import_module(name)
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    _, middle, old = previous
    gc.set_threshold(young_threshold, middle, old)
    return GcSettings(
        frozen=gc.get_freeze_count(),
        thresholds=gc.get_threshold(),
        previous_thresholds=previous,
    )
