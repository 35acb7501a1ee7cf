"""Run one search in a separate process: ``python _child_search.py BASE_URL STORE QUERY``.

STORE is a diskcache directory or a postgresql:// URL. Prints the result URLs and the stats as
JSON. The API key comes from ZAI_API_KEY (never from argv).
"""

from __future__ import annotations

import asyncio
import json
import sys

from web_search import (
    LocalSearchCache,
    PersistentCache,
    PostgresSearchCache,
    SearchCache,
    WebSearchClient,
    ZaiSearchProvider,
)


async def main(base_url: str, store_spec: str, query: str) -> None:
    store: PersistentCache
    if store_spec.startswith("postgresql://"):
        store = PostgresSearchCache(store_spec)
    else:
        store = LocalSearchCache(store_spec)
    async with WebSearchClient(ZaiSearchProvider(base_url=base_url), SearchCache(store)) as client:
        results = await client.search(query, domains=["lao.ca.gov", "*.edu"])
        stats = await client.get_cache_stats()
    print(
        json.dumps(
            {"urls": [r.url for r in results], "l2_hits": stats.l2_hits, "misses": stats.misses}
        )
    )


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
