"""``import llm_client`` is cheap: the heavy dependencies load on first use only."""

from __future__ import annotations

import json
import subprocess
import sys


def test_import_does_not_load_heavy_dependencies() -> None:
    code = (
        "import json, sys, llm_client;"
        "print(json.dumps(sorted(m for m in ('litellm', 'openai', 'instructor', 'tiktoken',"
        " 'httpx', 'tenacity') if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout) == []


def test_public_names_resolve_lazily() -> None:
    code = (
        "import sys, llm_client;"
        "assert 'openai' not in sys.modules;"
        "llm_client.LLMClient; llm_client.Completion; llm_client.count_tokens;"
        "assert 'litellm' not in sys.modules;"
        "print(llm_client.__version__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip()
