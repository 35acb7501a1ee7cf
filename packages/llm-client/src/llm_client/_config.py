"""Configuration: model aliases, per-step model chains, provider URLs and keys.

Loaded from a TOML file (``LLM_CLIENT_CONFIG`` or an explicit path) and then the environment,
so switching a model never needs a code change::

    default_timeout = 60

    [aliases]
    fast = "openrouter/openai/gpt-4o-mini"
    strong = "zai/glm-4.6"

    [steps]
    generate = ["strong", "fast"]

    [providers.zai]
    base_url = "https://api.z.ai/api/paas/v4"

    [prices."openrouter/acme/model-x"]   # for a model no bundled price map knows
    input_per_million = 0.50             # US dollars per million tokens, read as Decimal
    output_per_million = 1.50
    cached_input_per_million = 0.05      # optional, likewise cache_write_ and reasoning_
    as_of = 2026-12-01                   # optional: when the price was checked

Environment overrides (highest precedence): ``LLM_MODEL_<STEP>="a,b"`` sets a step's chain,
``LLM_ALIAS_<NAME>=model`` sets an alias, ``<PROVIDER>_API_KEY`` and ``<PROVIDER>_BASE_URL``
(``OPENROUTER``, ``ZAI``, ``OPENAI``, ``ANTHROPIC``, and any registered provider; see
:mod:`llm_client._providers`) set a provider, and
``LLM_CLIENT_TIMEOUT`` the default timeout, ``LLM_CLIENT_PRICES`` (a JSON object shaped like
``[prices]``: ``{"acme/x": {"input_per_million": "0.5", "output_per_million": "1.5"}}``) adds to
and overrides the file's prices. Keys are ``SecretStr``: never printed.
"""

from __future__ import annotations

import datetime
import os
import tomllib
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from llm_client._errors import ConfigurationError

__all__ = [
    "CONFIG_ENV_VAR",
    "PRICES_ENV_VAR",
    "LLMConfig",
    "PriceSettings",
    "ProviderSettings",
    "config_price_rows",
]

CONFIG_ENV_VAR = "LLM_CLIENT_CONFIG"
"""Environment variable naming the TOML configuration file."""
PRICES_ENV_VAR = "LLM_CLIENT_PRICES"
"""Environment variable holding extra model prices as a JSON object (see ``[prices]``)."""

_Rate = Field(default=None, ge=0, allow_inf_nan=False)


class PriceSettings(BaseModel):
    """One model's price from the ``[prices]`` table, in US dollars per million tokens.

    Attributes:
        input_per_million: Uncached input price.
        output_per_million: Output price.
        cached_input_per_million: Prompt-cache read price; None: the input price.
        cache_write_per_million: Prompt-cache write price; None: the input price.
        reasoning_per_million: Reasoning-token price; None: the output price.
        as_of: When the price was checked.
        max_input_tokens: Context window, if known.
        max_output_tokens: Output limit, if known.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_million: Decimal = Field(ge=0, allow_inf_nan=False)
    output_per_million: Decimal = Field(ge=0, allow_inf_nan=False)
    cached_input_per_million: Decimal | None = _Rate
    cache_write_per_million: Decimal | None = _Rate
    reasoning_per_million: Decimal | None = _Rate
    as_of: datetime.date | None = None
    max_input_tokens: int | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)


class ProviderSettings(BaseModel):
    """Where one provider lives and the key to use there.

    Attributes:
        base_url: API base URL; None means the provider's public default.
        api_key: The API key (kept secret in reprs and logs); None means read the environment.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = None
    api_key: SecretStr | None = None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # A proxy password in the URL (``https://user:secret@proxy/v1``) stays out of reprs,
        # so logging a configuration never shows it.
        for name, value in super().__repr_args__():
            yield name, _mask_password(value) if name == "base_url" else value


class LLMConfig(BaseModel):
    """All of llm-client's settings.

    Attributes:
        aliases: Short names for model strings (``fast = "openrouter/openai/gpt-4o-mini"``).
        steps: Per application step, the models to try in order (aliases allowed).
        providers: Per provider (``openrouter``, ``zai``, ``openai``, ``anthropic``), URL and key.
        default_timeout: Seconds one HTTP attempt may take.
        default_output_cap: Output tokens assumed for a budget estimate when ``max_tokens`` is
            not given.
        max_validation_retries: Re-asks after a reply fails validation (2 means 3 tries).
        prices: Per model string, a price for models no bundled price map knows (or whose
            list price is not what you pay); see :func:`llm_client.register_model` for code.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    aliases: dict[str, str] = Field(default_factory=dict)
    steps: dict[str, list[str]] = Field(default_factory=dict)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    default_timeout: float = Field(default=60.0, gt=0)
    default_output_cap: int = Field(default=4096, gt=0)
    max_validation_retries: int = Field(default=2, ge=0, le=10)
    prices: dict[str, PriceSettings] = Field(default_factory=dict)

    @field_validator("steps")
    @classmethod
    def _no_empty_steps(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for step, models in value.items():
            if not models:
                raise ValueError(f"step {step!r} lists no models")
        return value

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
    ) -> LLMConfig:
        """Read the TOML file (if any), then apply environment overrides.

        Args:
            path: TOML file; defaults to ``$LLM_CLIENT_CONFIG`` (no file when unset).
            env: Environment to read (defaults to ``os.environ``).

        Returns:
            The validated configuration.

        Raises:
            ConfigurationError: If the file is missing or malformed, or a value is invalid.
        """
        environ = os.environ if env is None else env
        data: dict[str, Any] = {}
        file = path if path is not None else environ.get(CONFIG_ENV_VAR) or None
        if file is not None:
            try:
                # Decimal: prices are money (timeouts accept it as well).
                text = Path(file).read_text(encoding="utf-8")
                data = tomllib.loads(text, parse_float=Decimal)
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigurationError(
                    f"cannot read llm-client config {str(file)!r}: {exc}"
                ) from exc
        data = _apply_env(data, environ)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigurationError(f"invalid llm-client config: {exc}") from exc

    def resolve_alias(self, model: str) -> str:
        """Follow aliases until a real model string remains.

        Raises:
            ConfigurationError: On an alias cycle.
        """
        seen: list[str] = []
        while model in self.aliases:
            if model in seen:
                raise ConfigurationError(f"alias cycle: {' -> '.join([*seen, model])}")
            seen.append(model)
            model = self.aliases[model]
        return model

    def models_for_step(self, step: str) -> list[str]:
        """The model chain configured for ``step``, aliases resolved.

        Raises:
            ConfigurationError: If no chain is configured for the step.
        """
        if step not in self.steps:
            known = ", ".join(sorted(self.steps)) or "none"
            raise ConfigurationError(
                f"no models configured for step {step!r} (configured: {known})"
            )
        return [self.resolve_alias(m) for m in self.steps[step]]

    def base_url(self, provider: str) -> str | None:
        """The configured or default base URL of ``provider``."""
        settings = self.providers.get(provider)
        if settings is not None and settings.base_url:
            return settings.base_url
        from llm_client._providers import provider_named

        spec = provider_named(provider)
        return spec.base_url if spec is not None else None

    def api_key(self, provider: str) -> SecretStr | None:
        """The configured key of ``provider`` (file or environment), or None."""
        settings = self.providers.get(provider)
        return None if settings is None else settings.api_key


def config_price_rows(config: LLMConfig) -> dict[str, dict[str, Any]]:
    """The configuration's ``[prices]`` as plain rows, aliases resolved to model strings.

    A price may be keyed by an alias (``[prices.fast]``): it then prices the aliased model.
    """
    return {
        config.resolve_alias(model): row.model_dump(exclude_none=True)
        for model, row in config.prices.items()
    }


def _mask_password(url: object) -> object:
    """``url`` with the password of its userinfo replaced by ``***``."""
    if not isinstance(url, str) or "@" not in url:
        return url
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}{slash}{path}"


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Overlay ``LLM_MODEL_*``, ``LLM_ALIAS_*``, provider keys/URLs and the timeout."""
    merged = dict(data)
    aliases = dict(merged.get("aliases", {}))
    steps = dict(merged.get("steps", {}))
    providers: dict[str, dict[str, Any]] = {
        name: dict(value) for name, value in dict(merged.get("providers", {})).items()
    }
    for name, value in environ.items():
        if name.startswith("LLM_MODEL_") and value.strip():
            steps[name.removeprefix("LLM_MODEL_").lower()] = [
                m.strip() for m in value.split(",") if m.strip()
            ]
        elif name.startswith("LLM_ALIAS_") and value.strip():
            aliases[name.removeprefix("LLM_ALIAS_").lower()] = value.strip()
    from llm_client._providers import providers as registered

    for spec in registered():
        key = environ.get(spec.key_variable)
        url = environ.get(spec.base_url_variable)
        if key or url:
            settings = providers.setdefault(spec.name, {})
            if key:
                settings["api_key"] = key
            if url:
                settings["base_url"] = url
    if environ.get("LLM_CLIENT_TIMEOUT"):
        merged["default_timeout"] = environ["LLM_CLIENT_TIMEOUT"]
    if environ.get(PRICES_ENV_VAR, "").strip():
        merged["prices"] = {**dict(merged.get("prices", {})), **_env_prices(environ)}
    merged["aliases"], merged["steps"], merged["providers"] = aliases, steps, providers
    return merged


def _env_prices(environ: Mapping[str, str]) -> dict[str, Any]:
    """``LLM_CLIENT_PRICES`` parsed (numbers as Decimal); its errors name the variable."""
    import json

    try:
        prices = json.loads(environ[PRICES_ENV_VAR], parse_float=Decimal)
    except ValueError as exc:
        raise ConfigurationError(f"{PRICES_ENV_VAR} is not valid JSON: {exc}") from exc
    if not isinstance(prices, dict):
        raise ConfigurationError(
            f'{PRICES_ENV_VAR} must be a JSON object: {{"model": {{"input_per_million": ...}}}}'
        )
    return prices
