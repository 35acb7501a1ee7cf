"""z.ai (Zhipu GLM): ``zai/<model>`` or a bare ``glm-*`` name, at z.ai's paas/v4 API.

Error quirk: insufficient balance is HTTP 429 with code ``1113`` in the body; it must not be
retried like a rate limit. Prices: bare GLM names are priced as ``zai/glm-*``.
"""

from llm_client._providers._spec import ProviderSpec

PROVIDER = ProviderSpec(
    name="zai",
    prefixes=("zai/",),
    kept_prefixes=("glm-",),
    base_url="https://api.z.ai/api/paas/v4",
    key_env="ZAI_API_KEY",
    quota_codes=frozenset({"1113"}),
    price_aliases={"glm-": "zai/glm-"},
)
