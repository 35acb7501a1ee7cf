-- Undo 20261202001300_web_search_cache_batch.sql: the batched cache functions.
drop function if exists public.web_search_cache_put_many(jsonb, timestamptz);
drop function if exists public.web_search_cache_hit_many(text[], timestamptz);
