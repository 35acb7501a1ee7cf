-- Down file of 20261202001410_batch_items.sql (applied by `llm-common-db rollback`).
-- Drops the batch items table (refused while it holds rows, unless --force).

drop index if exists public.pipeline_batch_items_status_idx;
drop table if exists public.pipeline_batch_items;
