"""Anthropic: ``anthropic/<model>``, through LiteLLM (its Messages API is not OpenAI's).

Needs the ``[litellm]`` extra; Claude through OpenRouter (``openrouter/anthropic/...``) does not.

Usage quirk: Anthropic's ``input_tokens`` exclude cache reads and writes;
:func:`llm_client.normalize_usage` adds them back, and cache writes are priced at their rate.
"""

from llm_client._providers._spec import ProviderSpec

PROVIDER = ProviderSpec(
    name="anthropic",
    kept_prefixes=("anthropic/",),
    base_url="https://api.anthropic.com",
    key_env="ANTHROPIC_API_KEY",
    backend="litellm",
)
