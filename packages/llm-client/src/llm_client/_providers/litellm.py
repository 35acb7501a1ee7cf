"""Anything LiteLLM knows: ``litellm/<model>`` (sent as ``<model>``); also every model string no
other provider claims, sent as is. The key and base URL are looked up by the string's first
segment (``litellm/mistral/...`` uses ``[providers.mistral]``), else LiteLLM's environment.
Needs the ``[litellm]`` extra (else :class:`~llm_client.MissingExtraError` when routed).
"""

from llm_client._providers._spec import ProviderSpec

PROVIDER = ProviderSpec(name="litellm", prefixes=("litellm/",), backend="litellm")
