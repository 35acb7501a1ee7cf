-- Down file of 20261202000910_plan_compat_search_cache.sql (applied by `llm-common-db rollback`).

drop function if exists public.cleanup_search_cache();
