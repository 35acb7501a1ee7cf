"""The ``llm-client`` command, offline against the test model and the loopback server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from llm_client import ConfigurationError
from llm_client._cli import app, schema_model
from llm_client.testing import FakeLLMServer, Reply
from typer.testing import CliRunner

runner = CliRunner()


def test_chat_with_the_test_model() -> None:
    result = runner.invoke(app, ["chat", "hi", "--model", "test"])
    assert result.exit_code == 0, result.output
    assert "offline test model" in result.stdout
    assert "1 attempt(s)" in result.output


def test_chat_with_json_schema_over_http(fake_llm_server: FakeLLMServer, tmp_path: Path) -> None:
    schema = {
        "title": "Bill",
        "type": "object",
        "properties": {"name": {"type": "string"}, "cost": {"type": "number", "minimum": 0}},
        "required": ["name", "cost"],
    }
    path = tmp_path / "bill.json"
    path.write_text(json.dumps(schema), encoding="utf-8")
    fake_llm_server.script(
        Reply.json({"name": "HB1", "cost": -1}), Reply.json({"name": "HB1", "cost": 3.5})
    )
    result = runner.invoke(
        app,
        [
            "chat",
            "bill",
            "--model",
            "openai/gpt-4o-mini",
            "--api-base",
            fake_llm_server.base_url,
            "--json-schema",
            str(path),
            "--system",
            "You extract bills.",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"name": "HB1", "cost": 3.5}
    first, second = fake_llm_server.requests
    assert first.messages[0]["role"] == "system"
    assert "You extract bills." in first.messages[0]["content"]
    assert '"minimum": 0' in first.messages[0]["content"]  # the file's schema, verbatim
    assert "-1 is less than the minimum of 0" in second.messages[-1]["content"]


def test_schema_model_validates_against_the_file() -> None:
    model = schema_model(
        {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    )
    assert model.model_validate({"n": 2}).model_dump() == {"n": 2}
    with pytest.raises(ValueError, match="required"):
        model.model_validate({})
    with pytest.raises(ConfigurationError):
        schema_model({"type": "array"})
    with pytest.raises(ConfigurationError):
        schema_model({"type": 12})


def test_chat_errors_exit_nonzero() -> None:
    result = runner.invoke(app, ["chat", "", "--model", "test"])
    assert result.exit_code == 1
    assert "InvalidMessagesError" in result.output


def test_price_and_models(monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(app, ["price", "gpt-4o-mini"])
    assert result.exit_code == 0, result.output
    assert "0.15" in result.stdout
    assert "0.6" in result.stdout
    assert "genai-prices" in result.stdout
    monkeypatch.setenv("LLM_MODEL_GENERATE", "fast,test")
    monkeypatch.setenv("LLM_ALIAS_FAST", "openrouter/openai/gpt-4o-mini")
    monkeypatch.delenv("LLM_CLIENT_CONFIG", raising=False)
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    assert "openrouter/openai/gpt-4o-mini" in result.stdout
    assert "fast → test" in result.stdout
