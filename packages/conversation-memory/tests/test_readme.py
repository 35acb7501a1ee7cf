"""The README's example runs as written (offline, local backend, model="test")."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_readme_example_runs_offline(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"## Example \(runs offline\)\n\n```python\n(.*?)```", text, re.S)
    assert match is not None
    script = tmp_path / "example.py"
    script.write_text(match.group(1), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "LLM_COMMON_DIR"}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[1, 2]"
    assert (tmp_path / ".llm-common" / "conversation-memory.sqlite3").exists()
