"""Client-side overhead of one chat completion: raw httpx vs openai SDK vs LiteLLM vs LLMClient.

Run:  uv run python bench/llm_client_overhead.py [--calls 300] [--concurrency 50]
      uv run python bench/llm_client_overhead.py --tracing-only [--rounds 7] [--calls 300]

The loopback FakeLLMServer runs in a SUBPROCESS, so its CPU is not counted; everything measured
here is client CPU (``time.process_time``, all threads of this process, LiteLLM's background
logging included) and wall-clock latency per call. Each client makes ``--calls`` sequential calls,
then the same number as batches of ``--concurrency`` concurrent calls, after a warm-up. Ratios are
against ``litellm.acompletion`` and raw ``httpx`` measured in the same run. Also reports the
import time of ``llm_client`` (``python -X importtime``).

Tracing section (first): ``LLMClient.chat`` with tracing off (``Telemetry.off()``: nothing of
OpenTelemetry imported), with OpenTelemetry's no-op tracer provider, and with the SDK's tracer
provider exporting every span to an in-memory exporter (``SimpleSpanProcessor``). The three run
in interleaved rounds (the order rotates each round), ``--calls`` sequential calls per variant
per round; the table shows the median CPU per call over the rounds, its spread and the ratio
against tracing off, then the load average before and after the run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from rich.console import Console
from rich.table import Table

MESSAGES = [{"role": "user", "content": "Say hi in five words."}]
MODEL = "gpt-4o-mini"
SERVER = (
    "import sys\n"
    "from llm_client.testing import FakeLLMServer\n"
    "server = FakeLLMServer().start()\n"
    "print(server.base_url, flush=True)\n"
    "sys.stdin.read()\n"
    "server.close()\n"
)

Call = Callable[[], Awaitable[Any]]


@dataclass
class Result:
    name: str
    mode: str
    cpu_ms: float
    p50_ms: float
    wall_ms: float


async def measure(name: str, call: Call, calls: int, concurrency: int) -> list[Result]:
    for _ in range(20):  # warm-up: imports, connection pools, caches
        await call()
    results = []
    latencies: list[float] = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(calls):
        t = time.perf_counter()
        await call()
        latencies.append((time.perf_counter() - t) * 1000)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    results.append(
        Result(
            name,
            "sequential",
            cpu / calls * 1000,
            statistics.median(latencies),
            wall / calls * 1000,
        )
    )

    async def timed() -> float:
        t = time.perf_counter()
        await call()
        return (time.perf_counter() - t) * 1000

    latencies = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    done = 0
    while done < calls:
        batch = min(concurrency, calls - done)
        latencies += await asyncio.gather(*(timed() for _ in range(batch)))
        done += batch
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    results.append(
        Result(
            name,
            f"{concurrency} concurrent",
            cpu / calls * 1000,
            statistics.median(latencies),
            wall / calls * 1000,
        )
    )
    return results


async def run(base_url: str, calls: int, concurrency: int) -> list[Result]:
    import httpx
    import litellm
    from llm_client import InMemoryBudget, LLMClient, LLMConfig
    from openai import AsyncOpenAI

    litellm.suppress_debug_info = True
    results: list[Result] = []
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)

    async with httpx.AsyncClient(limits=limits) as http:

        async def raw() -> Any:
            response = await http.post(
                f"{base_url}/chat/completions",
                json={"model": MODEL, "messages": MESSAGES},
                headers={"Authorization": "Bearer x"},
            )
            response.raise_for_status()
            return response.json()["choices"][0]["message"]["content"]

        results += await measure("httpx (raw POST)", raw, calls, concurrency)

    async with httpx.AsyncClient(limits=limits) as http:
        sdk = AsyncOpenAI(api_key="x", base_url=base_url, max_retries=0, http_client=http)

        async def openai_sdk() -> Any:
            done = await sdk.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
            return done.choices[0].message.content

        results += await measure("openai SDK", openai_sdk, calls, concurrency)

    async def lite() -> Any:
        done = await litellm.acompletion(
            model=f"openai/{MODEL}", messages=MESSAGES, api_base=base_url, api_key="x"
        )
        return done.choices[0].message.content

    results += await measure("litellm.acompletion", lite, calls, concurrency)
    await litellm.close_litellm_async_clients()

    async with LLMClient(config=LLMConfig()) as llm:

        async def ours() -> Any:
            return await llm.chat(MESSAGES, f"openai/{MODEL}", api_base=base_url)

        results += await measure("LLMClient.chat", ours, calls, concurrency)

    async with LLMClient(InMemoryBudget(Decimal(10_000)), config=LLMConfig()) as llm:

        async def budgeted() -> Any:
            return await llm.chat(MESSAGES, f"openai/{MODEL}", api_base=base_url)

        results += await measure("LLMClient.chat + budget", budgeted, calls, concurrency)
    return results


TRACING = ("tracing off", "no-op tracer provider", "SDK + in-memory exporter")


async def tracing_overhead(base_url: str, rounds: int, calls: int) -> dict[str, list[float]]:
    """CPU ms per call of each tracing variant, one sample per round (interleaved rounds)."""
    from llm_client import LLMClient, LLMConfig, Telemetry
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import NoOpTracerProvider

    exporter = InMemorySpanExporter()
    sdk = TracerProvider()
    sdk.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry = {
        TRACING[0]: Telemetry.off(),
        TRACING[1]: Telemetry(NoOpTracerProvider()),
        TRACING[2]: Telemetry(sdk),
    }
    clients = {name: LLMClient(config=LLMConfig(), telemetry=t) for name, t in telemetry.items()}
    samples: dict[str, list[float]] = {name: [] for name in TRACING}
    model = f"openai/{MODEL}"
    try:
        for llm in clients.values():
            for _ in range(30):  # warm-up: imports, connection pools, caches
                await llm.chat(MESSAGES, model, api_base=base_url)
        for round_no in range(rounds):
            order = TRACING[round_no % 3 :] + TRACING[: round_no % 3]
            for name in order:
                llm = clients[name]
                cpu0 = time.process_time()
                for _ in range(calls):
                    await llm.chat(MESSAGES, model, api_base=base_url)
                samples[name].append((time.process_time() - cpu0) / calls * 1000)
                exporter.clear()
    finally:
        for llm in clients.values():
            await llm.aclose()
        sdk.shutdown()
    return samples


def print_tracing(console: Console, samples: dict[str, list[float]], calls: int) -> None:
    rounds = len(samples[TRACING[0]])
    table = Table(
        title=f"LLMClient.chat CPU per call by tracing mode ({rounds} interleaved rounds x "
        f"{calls} sequential calls, server in a subprocess)"
    )
    for col in ("tracing", "median CPU ms/call", "min", "max", "vs tracing off (median)"):
        table.add_column(col, justify="left" if col == "tracing" else "right")
    base = statistics.median(samples[TRACING[0]])
    for name in TRACING:
        values = samples[name]
        median = statistics.median(values)
        table.add_row(
            name, f"{median:.3f}", f"{min(values):.3f}", f"{max(values):.3f}",
            f"{median / base:.3f}x",
        )  # fmt: skip
    console.print(table)


def import_time_ms(runs: int = 7) -> float:
    """Median cumulative ``import llm_client`` time from ``python -X importtime``."""
    samples = []
    for _ in range(runs):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import llm_client"],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        line = [ln for ln in err.splitlines() if ln.rstrip().endswith("| llm_client")][-1]
        samples.append(int(line.split("|")[1]) / 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved tracing rounds")
    parser.add_argument("--tracing-only", action="store_true", help="only the tracing section")
    args = parser.parse_args()
    console = Console(width=150)
    load_before = os.getloadavg()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        tracing = asyncio.run(tracing_overhead(base_url, args.rounds, args.calls))
        results = (
            [] if args.tracing_only else asyncio.run(run(base_url, args.calls, args.concurrency))
        )
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)

    print_tracing(console, tracing, args.calls)
    console.print(
        "load average (1, 5, 15 min): before "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; after "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    if args.tracing_only:
        return
    table = Table(title=f"client overhead per call ({args.calls} calls, server in a subprocess)")
    for col in (
        "client",
        "mode",
        "CPU ms/call",
        "p50 latency ms",
        "wall ms/call",
        "CPU vs litellm",
        "CPU vs httpx",
    ):
        table.add_column(col, justify="left" if col in ("client", "mode") else "right")
    base = {(r.name, r.mode): r for r in results}
    for r in results:
        lite = base[("litellm.acompletion", r.mode)].cpu_ms
        raw = base[("httpx (raw POST)", r.mode)].cpu_ms
        table.add_row(
            r.name,
            r.mode,
            f"{r.cpu_ms:.2f}",
            f"{r.p50_ms:.2f}",
            f"{r.wall_ms:.2f}",
            f"{r.cpu_ms / lite:.2f}x",
            f"{r.cpu_ms / raw:.2f}x",
        )
    console.print(table)
    console.print(
        f"import llm_client: {import_time_ms():.1f} ms (median of 7, python -X importtime)"
    )


if __name__ == "__main__":
    main()
