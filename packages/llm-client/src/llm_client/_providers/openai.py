"""OpenAI, and any OpenAI-compatible server given as ``api_base``: ``openai/<model>``."""

from llm_client._providers._spec import ProviderSpec

PROVIDER = ProviderSpec(
    name="openai",
    prefixes=("openai/",),
    base_url="https://api.openai.com/v1",
    key_env="OPENAI_API_KEY",
)
