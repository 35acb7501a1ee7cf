"""The provider registry: built-in provider modules, found once, plus what apps register.

Every module of ``llm_client._providers`` whose name does not start with ``_`` defines
``PROVIDER`` (a :class:`ProviderSpec`); they are discovered on first use, so adding a built-in
provider is adding one module. Apps add theirs with :func:`register_provider`.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading

from llm_client._errors import ConfigurationError
from llm_client._providers._spec import ProviderSpec

__all__ = [
    "provider_for_model",
    "provider_named",
    "providers",
    "register_provider",
    "unregister_provider",
]

_lock = threading.Lock()
_specs: dict[str, ProviderSpec] = {}
_loaded = False


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    package = importlib.import_module("llm_client._providers")
    found: list[ProviderSpec] = []
    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            spec = importlib.import_module(f"llm_client._providers.{module.name}").PROVIDER
            found.append(spec)
    with _lock:
        if not _loaded:
            for spec in found:
                _specs.setdefault(spec.name, spec)
            _loaded = True


def register_provider(spec: ProviderSpec, *, replace: bool = False) -> None:
    """Make a provider routable: its prefixes, URL, key variable, quirks and price aliases.

    Example:
        >>> register_provider(ProviderSpec(
        ...     name="acme", prefixes=("acme/",), base_url="https://llm.acme.example/v1",
        ...     key_env="ACME_API_KEY", price_aliases={"acme/": "openai/"}))

    Args:
        spec: The provider.
        replace: Replace a provider of the same name (else that is an error).

    Raises:
        ConfigurationError: A provider of that name exists and ``replace`` is False.
    """
    _load_builtins()
    with _lock:
        if spec.name in _specs and not replace and _specs[spec.name] != spec:
            raise ConfigurationError(
                f"provider {spec.name!r} is already registered (pass replace=True)"
            )
        _specs[spec.name] = spec


def unregister_provider(name: str) -> None:
    """Forget a provider registered with :func:`register_provider` (tests use it)."""
    with _lock:
        _specs.pop(name, None)


def providers() -> list[ProviderSpec]:
    """Every registered provider (built-ins first)."""
    _load_builtins()
    with _lock:
        return list(_specs.values())


def provider_named(name: str) -> ProviderSpec | None:
    """The provider called ``name``, or None."""
    _load_builtins()
    with _lock:
        return _specs.get(name)


def provider_for_model(model: str) -> tuple[ProviderSpec, str] | None:
    """The provider serving ``model`` and the model name to send; the longest prefix wins.

    Returns:
        ``(spec, wire_model)``, or None when no provider claims the string (LiteLLM then
        routes it as is).
    """
    best: tuple[int, ProviderSpec, str] | None = None
    for spec in providers():
        for prefix in spec.prefixes:
            if model.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), spec, model.removeprefix(prefix))
        for prefix in spec.kept_prefixes:
            if model.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), spec, model)
    return None if best is None else (best[1], best[2])
