"""The ``llm-client`` command: chat with a model, look up a price, list configured models.

Examples::

    llm-client chat "Say hi" --model test
    llm-client chat "Extract the bill" --model fast --json-schema bill.schema.json
    llm-client price openrouter/openai/gpt-4o-mini
    llm-client models
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer
from pydantic import BaseModel, ConfigDict, model_validator
from rich.console import Console
from rich.table import Table

from llm_client._errors import ConfigurationError, LLMClientError

__all__ = ["app", "schema_model"]

app = typer.Typer(
    name="llm-client",
    help="Chat with any LLM provider, check prices and configured models.",
    no_args_is_help=True,
    add_completion=False,
)
_out = Console()
_err = Console(stderr=True)


def schema_model(schema: dict[str, Any]) -> type[BaseModel]:
    """A Pydantic model that advertises ``schema`` and validates replies against it.

    instructor sends ``model_json_schema()`` to the model and validates the reply through the
    model, so both sides use exactly the JSON Schema from the file (checked with ``jsonschema``).

    Raises:
        ConfigurationError: If ``schema`` is not a valid JSON Schema for an object.
    """
    import jsonschema  # type: ignore[import-untyped]

    try:
        validator_cls = jsonschema.validators.validator_for(schema)
        validator_cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigurationError(f"invalid JSON schema: {exc.message}") from exc
    if schema.get("type", "object") != "object":
        raise ConfigurationError('--json-schema must describe an object ("type": "object")')
    validator = validator_cls(schema)

    class SchemaReply(BaseModel):
        model_config = ConfigDict(extra="allow")
        json_schema: ClassVar[dict[str, Any]] = schema

        @model_validator(mode="before")
        @classmethod
        def _check(cls, data: Any) -> Any:
            errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
            if errors:
                where = "/".join(str(p) for p in errors[0].path) or "<root>"
                raise ValueError(f"{where}: {errors[0].message}")
            return data

        @classmethod
        def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
            return dict(schema)

    SchemaReply.__name__ = str(schema.get("title") or "Reply")
    return SchemaReply


@app.command()
def chat(
    prompt: Annotated[str, typer.Argument(help="What to ask.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model string or alias.")] = "test",
    system: Annotated[str | None, typer.Option(help="A system message.")] = None,
    json_schema: Annotated[
        Path | None, typer.Option("--json-schema", help="Reply as JSON matching this schema.")
    ] = None,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Output token cap.")] = None,
    api_base: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL.")] = None,
) -> None:
    """Send one prompt; print the reply and a one-line usage and cost summary."""
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    try:
        response_model = None
        if json_schema is not None:
            try:
                schema = json.loads(json_schema.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigurationError(f"cannot read {json_schema}: {exc}") from exc
            response_model = schema_model(schema)
        done = asyncio.run(
            _complete(messages, model, response_model, temperature, max_tokens, api_base)
        )
    except LLMClientError as exc:
        _err.print(f"[red]error:[/red] {type(exc).__name__}: {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from None
    output = done.output
    if isinstance(output, BaseModel):
        _out.print_json(json.dumps(output.model_dump(mode="json")))
    else:
        _out.print(output, markup=False, highlight=False)
    cost = "unpriced" if done.cost is None else f"${done.cost}"
    _err.print(
        f"[dim]{done.model} ({done.provider}) · {done.usage.prompt_tokens} in / "
        f"{done.usage.completion_tokens} out tokens · {cost} · "
        f"{len(done.attempts)} attempt(s) · {done.latency_ms:.0f} ms[/dim]",
        highlight=False,
    )


async def _complete(
    messages: list[dict[str, Any]],
    model: str,
    response_model: type[BaseModel] | None,
    temperature: float | None,
    max_tokens: int | None,
    api_base: str | None,
) -> Any:
    from llm_client._client import LLMClient

    async with LLMClient() as llm:
        return await llm.complete(
            messages,
            model,
            response_model,
            temperature=temperature,
            max_tokens=max_tokens,
            api_base=api_base,
        )


@app.command()
def price(model: Annotated[str, typer.Argument(help="Model string or alias.")]) -> None:
    """Show a model's prices per million tokens and where they come from.

    Sources, first match wins: registered (register_model), config ([prices] in the config
    file or LLM_CLIENT_PRICES), bundled (llm-client's dated table), genai-prices, litellm
    (with the [litellm] extra). Providers that report a call's cost (OpenRouter) are billed
    that figure when it is plausible against this price. An unpriced model prints one
    `error:` line saying how to supply a price and exits 1.
    """
    from llm_client._config import LLMConfig, config_price_rows
    from llm_client._pricing import describe_price, use_config_prices

    try:
        config = LLMConfig.load()
        resolved = config.resolve_alias(model)
    except LLMClientError as exc:
        _err.print(f"error: {exc}", highlight=False)
        raise typer.Exit(1) from None
    use_config_prices(config_price_rows(config))
    info = describe_price(resolved)
    if info.get("source") == "unpriced":
        _err.print(
            f"error: no price for {resolved!r}: calls are recorded as unpriced and refused "
            f'under a budget; add [prices."{resolved}"] with input_per_million and '
            "output_per_million to the llm-client config file (LLM_CLIENT_CONFIG), or set "
            "LLM_CLIENT_PRICES, or call llm_client.register_model()",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    table = Table(title=f"{resolved} (USD per 1M tokens)")
    table.add_column("field")
    table.add_column("value", justify="right")
    for key in (
        "input_per_million",
        "output_per_million",
        "cached_input_per_million",
        "cache_write_per_million",
        "reasoning_per_million",
        "long_context",
        "max_input_tokens",
        "max_output_tokens",
        "provider",
        "source",
        "as_of",
    ):
        value = info.get(key)
        table.add_row(key, "-" if value is None else str(value))
    _out.print(table)
    if _reports_cost(resolved):
        _out.print(
            "billed: the provider-reported cost (usage.cost) when it is plausible against "
            f"this price; else this price ({info['source']})",
            highlight=False,
        )
    else:
        _out.print(f"billed: token counts x this price (source: {info['source']})", highlight=False)


def _reports_cost(model: str) -> bool:
    """Whether the provider of ``model`` reports each call's cost (OpenRouter's usage.cost)."""
    from llm_client._providers import provider_for_model

    found = provider_for_model(model)
    extra = found[0].extra_body if found is not None else None
    return bool(extra and isinstance(extra.get("usage"), dict) and extra["usage"].get("include"))


@app.command()
def models() -> None:
    """List the configured aliases and per-step model chains."""
    from llm_client._config import LLMConfig

    try:
        config = LLMConfig.load()
    except LLMClientError as exc:
        _err.print(f"error: {exc}", highlight=False)
        raise typer.Exit(1) from None
    aliases = Table(title="aliases")
    aliases.add_column("alias")
    aliases.add_column("model")
    for name, target in sorted(config.aliases.items()):
        aliases.add_row(name, target)
    steps = Table(title="steps")
    steps.add_column("step")
    steps.add_column("models (in order)")
    for step, chain in sorted(config.steps.items()):
        steps.add_row(step, " → ".join(chain))
    _out.print(aliases)
    _out.print(steps)
    if not config.aliases and not config.steps:
        _err.print("nothing configured: set LLM_CLIENT_CONFIG to a TOML file or LLM_MODEL_<STEP>")
