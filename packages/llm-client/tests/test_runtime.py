"""prepare_for_serving: the collector's start-up objects are frozen and its thresholds raised."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator

import pytest
from llm_client import GcSettings, prepare_for_serving


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_freezes_survivors_and_raises_the_young_threshold(restore_gc: None) -> None:
    settings = prepare_for_serving(young_threshold=5_000)
    assert isinstance(settings, GcSettings)
    # Frozen objects that die later leave the permanent generation (other threads of the test
    # process may free some meanwhile); nothing joins it without another freeze.
    assert 0 < gc.get_freeze_count() <= settings.frozen
    # Frozen objects leave the collector's view: a full collection no longer walks them.
    assert len(gc.get_objects()) < settings.frozen // 10
    assert gc.get_threshold()[0] == 5_000
    assert settings.thresholds == gc.get_threshold()
    assert settings.previous_thresholds[1:] == settings.thresholds[1:]


def test_preload_imports_what_the_first_call_would() -> None:
    code = (
        "import sys, llm_client\n"
        "lazy = {'openai', 'instructor', 'llm_client._structured'}\n"
        "assert not lazy & set(sys.modules)\n"
        "llm_client.prepare_for_serving()\n"
        "assert lazy <= set(sys.modules), lazy - set(sys.modules)\n"
        "assert 'litellm' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_garbage_made_later_is_still_collected(restore_gc: None) -> None:
    prepare_for_serving()

    class Node:
        def __init__(self) -> None:
            self.me = self

    import weakref

    node = Node()
    alive = weakref.ref(node)
    del node
    gc.collect()
    assert alive() is None


def test_threshold_must_be_positive(restore_gc: None) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        prepare_for_serving(young_threshold=0)
