"""A throwaway OpenAI-compatible provider, declared exactly as a built-in one is.

A built-in provider is this file under ``llm_client/_providers/`` (found automatically); an
app's own is this file anywhere, passed to ``llm_client.register_provider(PROVIDER)``.
"""

from llm_client import ProviderSpec

PROVIDER = ProviderSpec(
    name="acme",
    prefixes=("acme/",),  # "acme/gpt-4o-mini" is sent as "gpt-4o-mini"
    base_url="https://llm.acme.invalid/v1",
    key_env="ACME_API_KEY",
    quota_codes=frozenset({"acme_out_of_credit"}),  # never retried
    extra_body={"usage": {"include": True}},  # asks for the provider's own cost report
    price_aliases={"acme/": "openai/"},  # priced as OpenAI's model of the same name
)
