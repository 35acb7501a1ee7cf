"""``ProviderSpec``: everything llm-client needs to know about one provider, in one place."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from llm_client._errors import ConfigurationError

__all__ = ["Backend", "ProviderSpec"]

Backend = Literal["sdk", "litellm"]
"""``sdk``: OpenAI-compatible, sent through the openai SDK. ``litellm``: sent through LiteLLM."""

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """One provider: which model strings it serves, where, with which key, and its quirks.

    Each built-in provider is one module in ``llm_client/_providers/`` defining ``PROVIDER``;
    an app adds its own with :func:`llm_client.register_provider`.

    Attributes:
        name: Provider name, as in cost records, ``api_keys={name: ...}`` and
            ``[providers.<name>]`` in the configuration (lower case).
        prefixes: Model-string prefixes routed here and stripped before sending
            (``"zai/"``: ``zai/glm-4.6`` is sent as ``glm-4.6``).
        kept_prefixes: Prefixes routed here and sent as they are (``"glm-"``).
        base_url: The public API base URL (None: LiteLLM's default for the provider).
        key_env: Environment variable holding the API key (None: ``<NAME>_API_KEY``).
        backend: ``sdk`` for OpenAI-compatible APIs, ``litellm`` for the rest.
        quota_codes: Error codes in the provider's error body that mean "out of credit": never
            retried (z.ai's ``1113``, sent with HTTP 429).
        extra_body: JSON fields every request carries (OpenRouter reports what it charged in
            ``usage.cost`` only when asked with ``{"usage": {"include": True}}``).
        price_aliases: Model-string prefix -> the prefix to price it under, when the price
            tables know the model by another name (``{"glm-": "zai/glm-"}``).
    """

    name: str
    prefixes: tuple[str, ...] = ()
    kept_prefixes: tuple[str, ...] = ()
    base_url: str | None = None
    key_env: str | None = None
    backend: Backend = "sdk"
    quota_codes: frozenset[str] = frozenset()
    extra_body: Mapping[str, Any] | None = None
    price_aliases: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigurationError(
                f"provider name {self.name!r} must be lower case letters, digits and '_'"
            )
        if self.backend not in ("sdk", "litellm"):
            raise ConfigurationError("provider backend must be 'sdk' or 'litellm'")
        for prefix in (*self.prefixes, *self.kept_prefixes):
            if not isinstance(prefix, str) or not prefix:
                raise ConfigurationError(f"provider {self.name!r} has an empty model prefix")

    @property
    def key_variable(self) -> str:
        """The environment variable holding the key."""
        return self.key_env or f"{self.name.upper()}_API_KEY"

    @property
    def base_url_variable(self) -> str:
        """The environment variable overriding the base URL."""
        return f"{self.name.upper()}_BASE_URL"

    def price_name(self, model: str) -> str:
        """The model string to look prices up under (``price_aliases`` applied)."""
        for prefix, alias in self.price_aliases.items():
            if model.startswith(prefix):
                return alias + model.removeprefix(prefix)
        return model
