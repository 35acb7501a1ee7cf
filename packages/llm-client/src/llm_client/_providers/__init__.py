"""Providers: one module per provider declaring it (``ProviderSpec``), a registry, and routing.

To add an OpenAI-compatible provider to llm-client, add one module here defining
``PROVIDER = ProviderSpec(...)`` (it is discovered automatically) and one test; an app adds
its own at runtime with :func:`llm_client.register_provider`. See the README's "Add a
provider".
"""

from llm_client._providers._registry import (
    provider_for_model,
    provider_named,
    providers,
    register_provider,
    unregister_provider,
)
from llm_client._providers._routing import Route, Router, resolve_route, split_userinfo
from llm_client._providers._spec import Backend, ProviderSpec

__all__ = [
    "Backend",
    "ProviderSpec",
    "Route",
    "Router",
    "provider_for_model",
    "provider_named",
    "providers",
    "register_provider",
    "resolve_route",
    "split_userinfo",
    "unregister_provider",
]
