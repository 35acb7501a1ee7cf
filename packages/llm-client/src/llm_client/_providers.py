"""Which provider answers a model string, at which URL, with which key.

==============================  ==========  ==================================  ==============
Model string                    Provider    Sent as / base URL                  Path
==============================  ==========  ==================================  ==============
``test`` / ``TestModel(...)``   test        in-process, no network              openai SDK
``openrouter/<vendor>/<m>``     openrouter  ``<vendor>/<m>`` at OpenRouter      openai SDK
``zai/<m>``, ``glm-*``          zai         ``<m>`` at z.ai (paas/v4)           openai SDK
``openai/<m>``                  openai      ``<m>`` at OpenAI or ``api_base``   openai SDK
``anthropic/<m>``               anthropic   LiteLLM                             litellm
``litellm/<any>``               litellm     ``<any>`` through LiteLLM           litellm
anything else                   litellm     as is, through LiteLLM              litellm
==============================  ==========  ==================================  ==============
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import SecretStr

from llm_client._config import KEY_ENV_VARS, LLMConfig
from llm_client._errors import ConfigurationError

__all__ = ["Route", "is_loopback", "resolve_route"]

Backend = Literal["sdk", "litellm"]

# Local servers (vLLM, llama.cpp, the FakeLLMServer) ignore the key but the SDK insists on one.
_PLACEHOLDER_KEY = SecretStr("not-needed")


@dataclass(frozen=True, slots=True)
class Route:
    """Everything needed to send one model's request.

    Attributes:
        model: Canonical model string (aliases resolved); used for prices and records.
        provider: ``openrouter``, ``zai``, ``openai``, ``anthropic``, ``litellm`` or ``test``.
        backend: ``sdk`` (openai SDK, OpenAI-compatible) or ``litellm``.
        wire_model: The ``model`` field actually sent.
        base_url: API base URL (None: LiteLLM's default for the provider).
        api_key: Key to send (secret; None: let LiteLLM read its environment).
        extra_body: Extra JSON fields for the request body.
        test_model: The in-process transport for the offline test model.
        loopback: Whether the request stays on this machine.
        headers: Extra request headers (credentials taken out of ``base_url``; secret).
    """

    model: str
    provider: str
    backend: Backend
    wire_model: str
    base_url: str | None
    api_key: SecretStr | None = field(default=None, repr=False)
    extra_body: Mapping[str, Any] | None = None
    test_model: Any = None
    loopback: bool = False
    headers: Mapping[str, str] | None = field(default=None, repr=False)

    @property
    def price_model(self) -> str:
        """The model string to price (``litellm/`` is routing, not part of the name).

        An offline test model named after a real model is priced like it (tests of money use
        that); any other test model is priced as ``test`` ($0): nothing is ever billed for it.
        """
        if self.provider == "test":
            from llm_client._pricing import price_for

            return self.model if price_for(self.model) is not None else "test"
        return self.model.removeprefix("litellm/")


def split_userinfo(url: str | None) -> tuple[str | None, dict[str, str] | None]:
    """Take ``user:password@`` out of a base URL and turn it into a Basic auth header.

    The openai SDK, httpx and LiteLLM log request URLs (httpx at INFO, the SDK at DEBUG), so a
    proxy password in a base URL would reach the logs. The header is what httpx itself would
    send for credentials in the URL, so the request on the wire does not change.

    Args:
        url: A base URL, possibly with credentials.

    Returns:
        ``(url without credentials, {"Authorization": "Basic ..."})``, or ``(url, None)``.
    """
    if not url or "@" not in url:
        return url, None
    try:
        parts = urlsplit(url)
        username, password = parts.username, parts.password
    except ValueError:
        return url, None
    if username is None and password is None:
        return url, None
    netloc = parts.netloc.rsplit("@", 1)[1]
    user_pass = f"{unquote(username or '')}:{unquote(password or '')}"
    token = base64.b64encode(user_pass.encode("utf-8")).decode("ascii")
    return urlunsplit(parts._replace(netloc=netloc)), {"Authorization": f"Basic {token}"}


def is_loopback(url: str | None) -> bool:
    """Whether ``url`` points at this machine (localhost, 127.0.0.0/8, ::1)."""
    if not url:
        return False
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _key(
    provider: str,
    config: LLMConfig,
    api_keys: Mapping[str, SecretStr],
    *,
    explicit_base: bool,
    base_url: str | None,
) -> SecretStr:
    key = api_keys.get(provider) or config.api_key(provider)
    if key is not None and key.get_secret_value():
        return key
    if explicit_base or is_loopback(base_url):
        return _PLACEHOLDER_KEY
    var = KEY_ENV_VARS.get(provider, f"{provider.upper()}_API_KEY")
    raise ConfigurationError(
        f"no API key for {provider}: set {var} or pass api_keys={{{provider!r}: ...}}"
    )


def resolve_route(
    model: object,
    config: LLMConfig,
    api_keys: Mapping[str, SecretStr],
    *,
    api_base: str | None = None,
) -> Route:
    """Route a model string (or a ``TestModel``) to its provider.

    Args:
        model: Model string or alias, or a ``llm_client.testing.TestModel`` instance.
        config: Aliases, base URLs and keys.
        api_keys: Keys passed to the client, by provider name (win over configuration).
        api_base: Explicit base URL for this call (OpenAI-compatible servers, LiteLLM).

    Returns:
        The route.

    Raises:
        ConfigurationError: If the model string is empty or a needed key is missing.
    """
    route = _resolve(model, config, api_keys, api_base=api_base)
    base_url, headers = split_userinfo(route.base_url)
    if headers is None:
        return route
    return dataclasses.replace(route, base_url=base_url, headers=headers)


def _resolve(
    model: object,
    config: LLMConfig,
    api_keys: Mapping[str, SecretStr],
    *,
    api_base: str | None = None,
) -> Route:
    if not isinstance(model, str):
        return Route(
            model=str(getattr(model, "name", None) or "test"),
            provider="test",
            backend="sdk",
            wire_model=str(getattr(model, "name", None) or "test"),
            base_url="http://test.invalid/v1",
            api_key=_PLACEHOLDER_KEY,
            test_model=model,
            loopback=True,
        )
    name = config.resolve_alias(model.strip())
    if not name:
        raise ConfigurationError("model must be a non-empty string")
    if name == "test":
        from llm_client.testing import TestModel

        return resolve_route(TestModel(), config, api_keys)
    explicit = api_base is not None
    if name.startswith(("litellm/", "anthropic/")):
        wire = name.removeprefix("litellm/")
        vendor = wire.split("/", 1)[0]
        key = api_keys.get(vendor) or config.api_key(vendor)
        base = api_base or (
            config.providers[vendor].base_url if vendor in config.providers else None
        )
        return Route(
            model=name,
            provider="anthropic" if vendor == "anthropic" else "litellm",
            backend="litellm",
            wire_model=wire,
            base_url=base,
            api_key=key if key is not None else (_PLACEHOLDER_KEY if explicit else None),
            loopback=is_loopback(base),
        )
    if name.startswith("openrouter/"):
        provider, wire = "openrouter", name.removeprefix("openrouter/")
    elif name.startswith("zai/"):
        provider, wire = "zai", name.removeprefix("zai/")
    elif name.startswith("glm-"):
        provider, wire = "zai", name
    elif name.startswith("openai/"):
        provider, wire = "openai", name.removeprefix("openai/")
    else:
        return Route(
            model=name,
            provider="litellm",
            backend="litellm",
            wire_model=name,
            base_url=api_base,
            api_key=_PLACEHOLDER_KEY if explicit else None,
            loopback=is_loopback(api_base),
        )
    if not wire:
        raise ConfigurationError(f"model {name!r} names a provider but no model")
    base = api_base or config.base_url(provider)
    return Route(
        model=name,
        provider=provider,
        backend="sdk",
        wire_model=wire,
        base_url=base,
        api_key=_key(provider, config, api_keys, explicit_base=explicit, base_url=base),
        # OpenRouter reports what it charged only when asked to.
        extra_body={"usage": {"include": True}} if provider == "openrouter" else None,
        loopback=is_loopback(base),
    )
