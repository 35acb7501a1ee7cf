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

The LiteLLM rows need the ``llm-client[litellm]`` extra; without it they fail when routed, before
anything is reserved or sent, with :class:`~llm_client.MissingExtraError` naming the extra.

The providers themselves are declared one per module (:mod:`llm_client._providers.zai`, ...)
and looked up in :mod:`llm_client._providers._registry`; this module only applies them.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import SecretStr

from llm_client._config import LLMConfig
from llm_client._errors import ConfigurationError, MissingExtraError
from llm_client._guard import check_request_allowed, is_loopback_url
from llm_client._providers._registry import provider_for_model, provider_named
from llm_client._providers._spec import Backend, ProviderSpec

__all__ = ["Route", "Router", "resolve_route", "split_userinfo"]

TEST_MODEL_NAME = "test"
"""The model string of the offline test model (``llm_client.testing.TestModel()``)."""

# Local servers (vLLM, llama.cpp, the FakeLLMServer) ignore the key but the SDK insists on one.
_PLACEHOLDER_KEY = SecretStr("not-needed")


@dataclass(frozen=True, slots=True)
class Route:
    """Everything needed to send one model's request.

    Attributes:
        model: Canonical model string (aliases resolved); used for prices and records.
        provider: The provider's name (``openrouter``, ``zai``, ..., ``litellm`` or ``test``).
        backend: ``sdk`` (openai SDK, OpenAI-compatible) or ``litellm``.
        wire_model: The ``model`` field actually sent.
        base_url: API base URL (None: LiteLLM's default for the provider).
        api_key: Key to send (secret; None: let LiteLLM read its environment).
        extra_body: Extra JSON fields for the request body.
        test_model: The in-process transport for the offline test model.
        loopback: Whether the request stays on this machine.
        headers: Extra request headers (credentials taken out of ``base_url``; secret).
        price_as: The model string to price (None: ``model``).
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
    price_as: str | None = None

    @property
    def price_model(self) -> str:
        """The model string to price (``litellm/`` is routing, not part of the name).

        An offline test model named after a real model is priced like it (tests of money use
        that); any other test model is priced as ``test`` ($0): nothing is ever billed for it.
        """
        if self.provider == "test":
            from llm_client._pricing import price_for

            return self.model if price_for(self.model) is not None else TEST_MODEL_NAME
        return self.price_as or self.model


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


def _test_route(test_model: Any) -> Route:
    name = str(getattr(test_model, "name", None) or TEST_MODEL_NAME)
    return Route(
        model=name,
        provider="test",
        backend="sdk",
        wire_model=name,
        base_url="http://test.invalid/v1",
        api_key=_PLACEHOLDER_KEY,
        test_model=test_model,
        loopback=True,
    )


def _new_test_model() -> Any:
    # The one place the core reaches for the test double: only when asked for "test".
    from llm_client.testing import TestModel

    return TestModel()


def _key(
    spec: ProviderSpec,
    config: LLMConfig,
    api_keys: Mapping[str, SecretStr],
    *,
    explicit_base: bool,
    base_url: str | None,
) -> SecretStr:
    key = api_keys.get(spec.name) or config.api_key(spec.name)
    if key is not None and key.get_secret_value():
        return key
    if explicit_base or is_loopback_url(base_url):
        return _PLACEHOLDER_KEY
    raise ConfigurationError(
        f"no API key for {spec.name}: set {spec.key_variable} or pass "
        f"api_keys={{{spec.name!r}: ...}}"
    )


def _litellm_route(
    name: str,
    wire: str,
    config: LLMConfig,
    api_keys: Mapping[str, SecretStr],
    api_base: str | None,
) -> Route:
    if not litellm_installed():
        raise MissingExtraError(
            f"model {name!r} is sent through LiteLLM, which", "litellm", missing="litellm"
        )
    # LiteLLM routes by the string's first segment; keys and URLs are looked up by it too.
    vendor = wire.split("/", 1)[0]
    vendor_spec = provider_named(vendor)
    key = api_keys.get(vendor) or config.api_key(vendor)
    settings = config.providers.get(vendor)
    base = api_base or (settings.base_url if settings is not None else None)
    litellm_vendor = vendor_spec is not None and vendor_spec.backend == "litellm"
    return Route(
        model=name,
        provider=vendor if litellm_vendor else "litellm",
        backend="litellm",
        wire_model=wire,
        base_url=base,
        api_key=key if key is not None else (_PLACEHOLDER_KEY if api_base is not None else None),
        loopback=is_loopback_url(base),
        price_as=name.removeprefix("litellm/"),
    )


def resolve_route(
    model: object,
    config: LLMConfig,
    api_keys: Mapping[str, SecretStr],
    *,
    api_base: str | None = None,
    test_model: Callable[[], Any] | None = None,
) -> Route:
    """Route a model string (or a ``TestModel``) to its provider.

    Args:
        model: Model string or alias, or a ``llm_client.testing.TestModel`` instance.
        config: Aliases, base URLs and keys.
        api_keys: Keys passed to the client, by provider name (win over configuration).
        api_base: Explicit base URL for this call (OpenAI-compatible servers, LiteLLM).
        test_model: Returns the test model ``"test"`` stands for (None: a new
            ``llm_client.testing.TestModel()``).

    Returns:
        The route, credentials taken out of its base URL.

    Raises:
        ConfigurationError: If the model string is empty or a needed key is missing.
        MissingExtraError: If the model is sent through LiteLLM and the ``[litellm]`` extra
            is not installed.
    """
    route = _resolve(model, config, api_keys, api_base, test_model)
    base_url, headers = split_userinfo(route.base_url)
    if headers is None:
        return route
    return dataclasses.replace(route, base_url=base_url, headers=headers)


def litellm_installed() -> bool:
    """Whether LiteLLM (the ``[litellm]`` extra) is installed; looked up, never imported."""
    try:
        return importlib.util.find_spec("litellm") is not None
    except ValueError:  # sys.modules["litellm"] set without a spec (a stand-in module)
        return True


def _resolve(
    model: object,
    config: LLMConfig,
    api_keys: Mapping[str, SecretStr],
    api_base: str | None,
    test_model: Callable[[], Any] | None,
) -> Route:
    if not isinstance(model, str):
        return _test_route(model)
    name = config.resolve_alias(model.strip())
    if not name:
        raise ConfigurationError("model must be a non-empty string")
    if name == TEST_MODEL_NAME:
        return _test_route(test_model() if test_model is not None else _new_test_model())
    found = provider_for_model(name)
    if found is None:
        return _litellm_route(name, name, config, api_keys, api_base)
    spec, wire = found
    if spec.backend == "litellm":
        return _litellm_route(name, wire, config, api_keys, api_base)
    if not wire:
        raise ConfigurationError(f"model {name!r} names a provider but no model")
    base = api_base or config.base_url(spec.name) or spec.base_url
    return Route(
        model=name,
        provider=spec.name,
        backend="sdk",
        wire_model=wire,
        base_url=base,
        api_key=_key(spec, config, api_keys, explicit_base=api_base is not None, base_url=base),
        extra_body=spec.extra_body,
        loopback=is_loopback_url(base),
        price_as=spec.price_name(name),
    )


class Router:
    """Routes one client's model specs: aliases, ``"test"``, providers and the request guard.

    Args:
        config: Aliases, base URLs and keys.
        api_keys: Keys passed to the client, by provider name.
    """

    def __init__(self, config: LLMConfig, api_keys: Mapping[str, SecretStr]) -> None:
        self._config = config
        self._keys = api_keys
        self._test_model: Any = None

    def route(self, spec: Any, api_base: str | None) -> Route:
        """The route of one model spec, after the real-request guard allowed it.

        Raises:
            ConfigurationError: Unknown or keyless model.
            RealRequestsBlockedError: Real requests are blocked and the route is not local.
        """
        route = resolve_route(
            spec, self._config, self._keys, api_base=api_base, test_model=self._default_test_model
        )
        if not route.loopback:
            check_request_allowed(route.base_url)
        return route

    def _default_test_model(self) -> Any:
        if self._test_model is None:
            self._test_model = _new_test_model()  # one per client: its SDK client is reused
        return self._test_model
