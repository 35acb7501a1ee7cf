"""Cold start: a fresh process per client, RSS at its first reply and time to that reply.

Run:  uv run python bench/startup.py [--rounds 7]

Clients, each in its own new ``python`` process, against the same loopback FakeLLMServer (which
runs in a separate subprocess, so its memory and CPU are not counted):

* ``openai SDK`` (the baseline): ``AsyncOpenAI(...).chat.completions.create``;
* ``chat app``: llm-client + conversation-memory as the chat app uses them (a local message
  store, ``get_context``, ``LLMClient.chat``, the reply saved), with no cost sink;
* ``chat app + cost sink``: the same with ``InMemoryBudget`` (every call reserved and settled);
* ``litellm``: ``litellm.acompletion`` (only when the ``[litellm]`` extra is installed).

Time is measured by this process from just before it starts the child to the moment the child
reports its first reply (interpreter start, imports, client set-up and the call). RSS is the
child's ``VmRSS`` right after that reply. Rounds are interleaved (each round runs every client
once, in a rotated order) so drift in machine load hits all clients alike; the report gives
medians, the spread (min-max) and ratios against the openai SDK's median of the same run, with
the load average before and after.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from llm_client_overhead import SERVER  # the loopback server's subprocess script (bench/)
from rich.console import Console
from rich.table import Table

# Each client prints "<VmRSS kB>" once its first reply is in, then exits.
_RSS = (
    "def rss_kb():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmRSS:'):\n"
    "            return int(line.split()[1])\n"
)
_MESSAGES = "[{'role': 'user', 'content': 'Say hi in five words.'}]"
CLIENTS: dict[str, str] = {
    "openai SDK": f"""
import asyncio, sys
from openai import AsyncOpenAI
{_RSS}
async def main(base):
    async with AsyncOpenAI(base_url=base, api_key="sk-bench") as client:
        reply = await client.chat.completions.create(model="gpt-4o-mini", messages={_MESSAGES})
    assert reply.choices[0].message.content
asyncio.run(main(sys.argv[1]))
print(rss_kb(), flush=True)
""",
    "chat app": f"""
import asyncio, sys, uuid
from llm_client import LLMClient, LLMConfig
from conversation_memory import ConversationMemory, LocalMessageStore
{_RSS}
SINK = None
async def main(base, path):
    async with LLMClient(SINK, LLMConfig()) as llm, LocalMessageStore(path) as store:
        memory = ConversationMemory(store, uuid.uuid4(), system_prompt="You are terse.")
        await memory.save_message("user", "Say hi in five words.")
        reply = await llm.chat(await memory.get_context(), "openai/gpt-4o-mini", api_base=base)
        await memory.save_message("assistant", reply)
    assert reply
asyncio.run(main(sys.argv[1], sys.argv[2]))
print(rss_kb(), flush=True)
""",
    "litellm": f"""
import asyncio, os, sys
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no price-map download at import
import litellm
{_RSS}
async def main(base):
    reply = await litellm.acompletion(
        model="openai/gpt-4o-mini", api_base=base, api_key="sk-bench", messages={_MESSAGES}
    )
    assert reply.choices[0].message.content
asyncio.run(main(sys.argv[1]))
print(rss_kb(), flush=True)
""",
}
CLIENTS["chat app + cost sink"] = CLIENTS["chat app"].replace(
    "SINK = None",
    "from decimal import Decimal\nfrom llm_client import InMemoryBudget\n"
    "SINK = InMemoryBudget(Decimal('1'))",
)
BASELINE = "openai SDK"


@dataclass
class Samples:
    seconds: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)


def run_once(code: str, base_url: str, db_path: str) -> tuple[float, float]:
    """Start one fresh process; seconds until its first reply, and its RSS (MB) then."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", code, base_url, db_path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    elapsed = time.perf_counter() - started
    _, err = child.communicate(timeout=120)
    if child.returncode != 0 or not line.strip():
        raise SystemExit(f"client failed (exit {child.returncode}):\n{err}")
    return elapsed, int(line) / 1000


def spread(values: list[float], fmt: str) -> str:
    return f"{format(min(values), fmt)}-{format(max(values), fmt)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    clients = dict(CLIENTS)
    if importlib.util.find_spec("litellm") is None:
        del clients["litellm"]  # the [litellm] extra is not installed here
    console = Console(width=120)
    load_before = os.getloadavg()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    base_url = server.stdout.readline().strip()
    samples = {name: Samples() for name in clients}
    names = list(clients)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
            for name in names:  # warm the OS page cache once; not counted
                run_once(clients[name], base_url, f"{tmp}/warm-{len(name)}.db")
            for round_no in range(args.rounds):
                order = names[round_no % len(names) :] + names[: round_no % len(names)]
                for name in order:
                    db = f"{tmp}/r{round_no}-{names.index(name)}.db"
                    seconds, rss = run_once(clients[name], base_url, db)
                    samples[name].seconds.append(seconds)
                    samples[name].rss_mb.append(rss)
    finally:
        server.communicate("", timeout=30)
    load_after = os.getloadavg()

    base = samples[BASELINE]
    base_time, base_rss = statistics.median(base.seconds), statistics.median(base.rss_mb)
    table = Table(title=f"first reply from a fresh process, {args.rounds} interleaved rounds")
    for column in ("client", "time s (median)", "spread", "vs SDK", "RSS MB (median)", "spread",
                   "vs SDK"):  # fmt: skip
        table.add_column(column, justify="left" if column == "client" else "right")
    for name, sample in samples.items():
        t, r = statistics.median(sample.seconds), statistics.median(sample.rss_mb)
        table.add_row(
            name,
            f"{t:.3f}",
            spread(sample.seconds, ".3f"),
            f"{t / base_time:.2f}x",
            f"{r:.1f}",
            spread(sample.rss_mb, ".1f"),
            f"{r / base_rss:.2f}x",
        )
    console.print(table)
    console.print(
        f"load average before {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f},"
        f" after {load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f}"
        f" ({os.cpu_count()} CPUs); python {sys.version.split()[0]}"
    )


if __name__ == "__main__":
    main()
