"""Run the ``cost-tracker`` command in a fresh interpreter, as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``cost-tracker ARGS``; no DATABASE_URL/PGPASSWORD from the test environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PGPASSWORD")}
    env["COLUMNS"] = "80"  # rich wraps at the terminal width: one line must stay one line
    return subprocess.run(
        [sys.executable, "-c", "from cost_tracker._cli import app; app()", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def run_report(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``cost-tracker report --since 2026-04-01 ARGS``."""
    return run_cli("report", "--since", "2026-04-01", *args)
