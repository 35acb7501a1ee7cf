"""cost-tracker's CostTracker is a cost sink for llm-client and web-search, with no imports between.

The cost-sink protocol is structural (SPEC.md, "cost sink"): llm-client and web-search each
declare it as a ``typing.Protocol``; cost-tracker satisfies both without importing either. These
tests prove it three ways: at runtime (``isinstance`` with the runtime-checkable protocols and
matching coroutine signatures), statically (``mypy --strict`` over a small module that assigns a
``CostTracker`` to both protocol types, with a negative control the checker must reject), and by
reading the import statements of every source file of the producers and the consumer.
"""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
import textwrap
import tomllib
import uuid
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import llm_client
import pytest
import web_search
from cost_tracker import CostTracker, LocalCostStore

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "packages"
SINK_METHODS = {
    "reserve": ["self", "estimate"],
    "settle": ["self", "reservation", "record"],
    "release": ["self", "reservation"],
}


@pytest.fixture
async def tracker(tmp_path: Path) -> Any:
    async with CostTracker(
        LocalCostStore(tmp_path / "costs"),
        daily_budget=Decimal("1"),
        project="protocols",
        outbox_path=tmp_path / "outbox.sqlite",
        retry_interval=None,
    ) as t:
        yield t


# --- runtime ------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [llm_client.CostSink, web_search.CostSink], ids=["llm", "ws"])
def test_tracker_is_an_instance_of_both_runtime_checkable_protocols(
    protocol: type, tmp_path: Path
) -> None:
    tracker = CostTracker(LocalCostStore(tmp_path / "c"), outbox_path=tmp_path / "o.sqlite")
    assert isinstance(tracker, protocol)

    class MissingRelease:  # negative control: the check is not vacuous
        async def reserve(self, estimate: Any) -> None: ...
        async def settle(self, reservation: Any, record: Any) -> None: ...

    assert not isinstance(MissingRelease(), protocol)


@pytest.mark.parametrize("protocol", [llm_client.CostSink, web_search.CostSink], ids=["llm", "ws"])
def test_sink_methods_are_coroutines_with_the_protocol_parameters(protocol: type) -> None:
    for name, params in SINK_METHODS.items():
        ours = getattr(CostTracker, name)
        theirs = getattr(protocol, name)
        assert inspect.iscoroutinefunction(ours), name
        assert list(inspect.signature(ours).parameters) == params, name
        assert list(inspect.signature(theirs).parameters) == params, name


def test_both_producers_declare_the_same_estimate_and_record_shapes() -> None:
    for name in ("CostEstimate", "CostRecord"):
        llm_fields = [(f.name, str(f.type)) for f in fields(getattr(llm_client, name))]
        ws_fields = [(f.name, str(f.type)) for f in fields(getattr(web_search, name))]
        assert llm_fields == ws_fields, name


@pytest.mark.parametrize("producer", [llm_client, web_search], ids=["llm", "ws"])
async def test_tracker_accepts_each_producers_own_estimate_and_record(
    tracker: CostTracker, producer: Any
) -> None:
    attempt = uuid.uuid4().hex
    estimate = producer.CostEstimate(attempt, "zai", "glm-4.6", "research", Decimal("0.01"))
    reservation = await tracker.reserve(estimate)
    assert (await tracker.budget_status()).reserved == Decimal("0.01")
    record = producer.CostRecord(
        attempt, "zai", "glm-4.6", "research", Decimal("0.0000002"), prompt_tokens=3
    )
    await tracker.settle(reservation, record)
    status = await tracker.budget_status()
    assert (status.reserved, status.spent, status.open_reservations) == (0, Decimal("2E-7"), 0)
    now = datetime.now(UTC)
    [stored] = await tracker.get_records(now - timedelta(days=1), now + timedelta(days=1))
    assert (stored.idempotency_id, stored.cost, stored.prompt_tokens) == (
        attempt,
        Decimal("0.0000002"),
        3,
    )


# --- static: mypy --strict ----------------------------------------------------------------------

GOOD = """
from __future__ import annotations

from typing import Any

import llm_client
import web_search
from cost_tracker import CostTracker, LocalCostStore, Reservation


def as_llm_sink(tracker: CostTracker) -> llm_client.CostSink[Reservation]:
    return tracker


def as_search_sink(tracker: CostTracker) -> web_search.CostSink[Reservation]:
    return tracker


async def wire() -> None:
    tracker = CostTracker(LocalCostStore())
    llm_sink: llm_client.CostSink[Any] = tracker
    search_sink: web_search.CostSink[Any] = tracker
    async with llm_client.LLMClient(cost_sink=tracker) as llm:
        await llm.chat("hi", model="test")
    async with web_search.WebSearchClient("zai", cost_sink=tracker, api_key="k") as search:
        await search.search("q")
    reservation = await llm_sink.reserve(
        llm_client.CostEstimate("id", "openai", "gpt-4o-mini", "generate", None)
    )
    await search_sink.release(reservation)
"""

BAD = """
from __future__ import annotations

from decimal import Decimal

import llm_client
import web_search


class NoRelease:
    async def reserve(self, estimate: llm_client.CostEstimate) -> str:
        return estimate.idempotency_id

    async def settle(self, reservation: str, record: llm_client.CostRecord) -> None:
        return None


class WrongRecord:
    async def reserve(self, estimate: web_search.CostEstimate) -> str:
        return estimate.idempotency_id

    async def settle(self, reservation: str, record: Decimal) -> None:
        return None

    async def release(self, reservation: str) -> None:
        return None


def first(sink: NoRelease) -> llm_client.CostSink[str]:
    return sink  # line 29


def second(sink: WrongRecord) -> web_search.CostSink[str]:
    return sink  # line 33
"""


@pytest.mark.slow  # a cold mypy cache takes a while; a warm one makes it seconds
def test_mypy_strict_accepts_a_tracker_as_both_sinks_and_rejects_impostors(
    tmp_path: Path,
) -> None:
    good, bad = tmp_path / "sink_good.py", tmp_path / "sink_bad.py"
    good.write_text(textwrap.dedent(GOOD).lstrip(), encoding="utf-8")
    bad.write_text(textwrap.dedent(BAD).lstrip(), encoding="utf-8")
    # Run from the root so the workspace's mypy settings (and cache) apply, as in `make typecheck`.
    proc = subprocess.run(
        # Errors inside the packages themselves are their own checks' business: report only ours.
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",
            # Its own cache (git-ignored): warm after the first run, never clashing with the
            # options of `make typecheck`.
            f"--cache-dir={ROOT / '.mypy_cache' / 'sink-protocols'}",
            "--no-color-output",
            str(good),
            str(bad),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = proc.stdout + proc.stderr
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert proc.returncode == 1, out
    assert not [e for e in errors if "sink_good.py" in e], out
    lines = sorted(int(e.split(":")[1]) for e in errors)
    assert lines == [29, 33], out
    assert "missing following" in out, out
    assert "release" in out, out


# --- no imports between the packages ------------------------------------------------------------


def _imported_modules(src: Path) -> set[str]:
    names: set[str] = set()
    for path in src.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
            elif (  # importlib.import_module("x") / __import__("x") with a literal name
                isinstance(node, ast.Call)
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and (
                    (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                    or (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                )
            ):
                names.add(node.args[0].value.split(".")[0])
    return names


def _declared_dependencies(package: str) -> set[str]:
    data = tomllib.loads((PACKAGES / package / "pyproject.toml").read_text(encoding="utf-8"))
    project = data["project"]
    specs = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        specs.extend(extra)
    return {re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0].lower() for spec in specs}


@pytest.mark.parametrize(
    ("package", "module", "forbidden"),
    [
        ("cost-tracker", "cost_tracker", {"llm_client", "web_search"}),
        ("web-search", "web_search", {"llm_client", "cost_tracker"}),
        ("llm-client", "llm_client", {"web_search", "cost_tracker"}),
    ],
)
def test_producers_and_tracker_never_import_each_other(
    package: str, module: str, forbidden: set[str]
) -> None:
    src = PACKAGES / package / "src" / module
    assert src.is_dir()
    imported = _imported_modules(src)
    assert "__future__" in imported  # the walk does see real import statements
    assert imported & forbidden == set()
    declared = _declared_dependencies(package)
    assert declared & {name.replace("_", "-") for name in forbidden} == set()
    # Belt and braces: no source line mentions a forbidden package in an import-like way.
    pattern = re.compile(rf"^\s*(from|import)\s+({'|'.join(forbidden)})\b", re.MULTILINE)
    for path in src.rglob("*.py"):
        assert not pattern.search(path.read_text(encoding="utf-8")), path
