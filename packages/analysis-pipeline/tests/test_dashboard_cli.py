"""``analysis-pipeline dashboard``: the standalone server, as a real process on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

CLI = [sys.executable, "-c", "from analysis_pipeline._cli import app; app()", "dashboard"]
_UNSET = ("LLM_COMMON_DASHBOARD_TOKEN", "DATABASE_URL", "ANALYSIS_PIPELINE_DATABASE_URL",
          "SUPABASE_URL", "OPENROUTER_API_KEY", "ZAI_API_KEY")  # fmt: skip


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _UNSET}
    return {**env, "LLM_COMMON_DIR": str(tmp_path / "state"), **extra}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _server(tmp_path: Path, **env: str) -> Iterator[str]:
    port = _free_port()
    (tmp_path / "state").mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [*CLI, "--port", str(port), "--store", str(tmp_path / "state")],
        env=_env(tmp_path, **env),
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # until the process listens (or dies, or the deadline passes)
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the dashboard never listened"
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()


def test_refuses_every_request_until_a_token_is_configured(tmp_path: Path) -> None:
    with _server(tmp_path) as base:
        for method, path in (("GET", "/models"), ("GET", "/login"), ("GET", "/runs.csv"),
                             ("POST", "/login"), ("POST", "/config/generate")):  # fmt: skip
            got = httpx.request(method, base + path, headers={"authorization": "Bearer x"})
            assert got.status_code == 503, path
            assert "LLM_COMMON_DASHBOARD_TOKEN" in got.text


def test_with_a_token_only_an_authenticated_request_gets_a_page(tmp_path: Path) -> None:
    with _server(tmp_path, LLM_COMMON_DASHBOARD_TOKEN="cli-secret-token") as base:
        assert httpx.get(base + "/models").status_code == 401
        assert (
            httpx.get(base + "/models", headers={"authorization": "Bearer no"}).status_code == 401
        )
        page = httpx.get(base + "/models", headers={"authorization": "Bearer cli-secret-token"})
        assert page.status_code == 200
        assert "cli-secret-token" not in page.text
        assert "<h1>Models" in page.text


def test_bad_options_are_one_error_line(tmp_path: Path) -> None:
    both = subprocess.run(
        [*CLI, "--database-url", "postgresql://u:pw@127.0.0.1:1/x", "--supabase-url", "http://x"],
        env=_env(tmp_path), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert both.returncode == 1
    assert both.stderr.strip().splitlines() == [
        "error: give either --database-url or --supabase-url, not both"
    ]
    missing = subprocess.run([*CLI, "--store", str(tmp_path / "nope")], env=_env(tmp_path),
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert missing.returncode == 1
    assert len(missing.stderr.strip().splitlines()) == 1
    assert missing.stderr.startswith("error: --store")
    unreachable = subprocess.run(
        [*CLI, "--database-url", "postgresql://u:hunter2@127.0.0.1:1/x", "--connect-timeout", "1"],
        env=_env(tmp_path), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert unreachable.returncode == 1
    assert len(unreachable.stderr.strip().splitlines()) == 1
    assert unreachable.stderr.startswith("error: ")
    assert "hunter2" not in unreachable.stderr
