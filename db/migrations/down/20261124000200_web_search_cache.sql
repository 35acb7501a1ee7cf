-- Down file of 20261124000200_web_search_cache.sql (applied by `llm-common-db rollback`).
-- Drops the persistent search cache and its statistics; refused while they hold rows unless
-- --force (a cache refills itself, but its statistics do not).

drop function if exists public.web_search_cache_stats_add(
    text, bigint, bigint, bigint, bigint, bigint, numeric, numeric
);
drop function if exists public.web_search_cache_cleanup(timestamptz);
drop function if exists public.web_search_cache_put(
    text, jsonb, timestamptz, text, text, timestamptz
);
drop function if exists public.web_search_cache_hit(text, timestamptz);

drop table if exists public.web_search_cache_stats;
drop table if exists public.web_search_cache;
