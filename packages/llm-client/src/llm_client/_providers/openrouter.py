"""OpenRouter: ``openrouter/<vendor>/<model>``, sent as ``<vendor>/<model>``.

Usage quirk: OpenRouter reports what it charged (``usage.cost``, and the upstream charge
under "bring your own key") only when the request asks for it. Prices: OpenRouter slugs are
mapped to the maker's entry in the price tables by :mod:`llm_client._pricing`.
"""

from llm_client._providers._spec import ProviderSpec

PROVIDER = ProviderSpec(
    name="openrouter",
    prefixes=("openrouter/",),
    base_url="https://openrouter.ai/api/v1",
    key_env="OPENROUTER_API_KEY",
    quota_codes=frozenset({"402"}),
    extra_body={"usage": {"include": True}},
)
