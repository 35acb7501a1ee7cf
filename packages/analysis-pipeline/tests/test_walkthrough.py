"""The README's switch-over walkthrough, command by command, on a fresh PostgreSQL database.

The commands are read from the README's "Switch-over" section (``$ `` lines of its console
block), so the README cannot drift from what works. A comment with ``(exit 1)`` marks a command
that must fail with one ``error:`` line.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from llm_common_testkit import create_database, drop_database, new_database_name, require_postgres

PACKAGE = Path(__file__).resolve().parents[1]
ROOT = PACKAGE.parents[1]
BIN = Path(sys.executable).parent
README = PACKAGE / "README.md"


def walkthrough() -> list[tuple[str, bool]]:
    """``(command, must_fail)`` for every ``$ `` line of the Switch-over section's console block."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Switch-over", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```console\n(.*?)```", section, re.S)
    assert block is not None, "the Switch-over section has no console block"
    steps = []
    for line in block.group(1).splitlines():
        if line.startswith("$ "):
            command, _, comment = line[2:].partition("  #")
            steps.append((command.strip(), "(exit 1)" in comment))
    return steps


@pytest.fixture
def database() -> Iterator[str]:
    admin = require_postgres()
    name = new_database_name("_switch_walk")
    url = create_database(admin, name)
    try:
        yield url
    finally:
        drop_database(admin, name)


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select tablename from pg_tables where schemaname = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def test_readme_walkthrough_runs_as_written(database: str, tmp_path: Path) -> None:
    steps = walkthrough()
    commands = [c for c, _ in steps]
    # The plan's order: flag 10% -> shadow -> compare -> 100% -> rollback.
    order = ["flag set --percent 10", "shadow", "compare --shadow", "flag set --percent 100",
             "flag set --enabled false", "rollback --package analysis-pipeline"]  # fmt: skip
    at = [next(i for i, c in enumerate(commands) if want in c) for want in order]
    assert at == sorted(at), commands

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("USE_NEW_LLM", "SUPABASE", "OPENROUTER", "ZAI_"))
           and k not in {"ANALYSIS_PIPELINE_DATABASE_URL"}}  # fmt: skip
    env.update(LLM_COMMON_DIR=str(tmp_path / "state"), PYTHONWARNINGS="ignore::DeprecationWarning")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    seen: dict[str, subprocess.CompletedProcess[str]] = {}
    for command, must_fail in steps:
        argv = shlex.split(command)
        if argv[0] == "export":
            key, _, value = argv[1].partition("=")
            # The README's example URL stands for the app's database: here, a fresh one.
            env[key] = database if key == "DATABASE_URL" else value
            continue
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env, check=False
        )
        if must_fail:
            assert done.returncode == 1, (command, done.stdout, done.stderr)
            assert done.stderr.startswith("error: "), (command, done.stderr)
            assert len(done.stderr.strip().splitlines()) == 1, (command, done.stderr)
        else:
            assert done.returncode == 0, (command, done.stdout, done.stderr)
        seen[command] = done
        if command.startswith("analysis-pipeline shadow"):
            with psycopg.connect(database) as conn:
                shadow_rows = conn.execute(
                    "select served_arm, new_status, legacy_status from pipeline_shadow_runs"
                ).fetchall()
            assert shadow_rows == [("legacy", "ok", "ok")]  # EX-AB0042-2026 is not in the 10%
        if command.startswith("analysis-pipeline flag route"):
            assert "1 of 3 keys to the new framework" in done.stdout  # CA-AB20-2025 is
        if command == "analysis-pipeline flag show":
            assert "OFF" in done.stdout
            assert "set by bob" in done.stdout
        if command.endswith("--force"):
            assert not {"pipeline_runs", "pipeline_flags", "pipeline_shadow_runs"} & _tables(
                database
            )
    compare = next(v for k, v in seen.items() if "compare --shadow" in k)
    assert "only new" in compare.stdout
    assert "p50 latency" in compare.stdout
