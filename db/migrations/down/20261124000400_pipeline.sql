-- Down file of 20261124000400_pipeline.sql (applied by `llm-common-db rollback`).
-- Drops the run log and the per-step model choices; refused while they hold rows unless --force.

drop trigger if exists model_configs_touch_updated_at on public.model_configs;
drop function if exists public.llm_common_touch_updated_at();

drop table if exists public.model_configs;
drop table if exists public.pipeline_steps;
drop table if exists public.pipeline_runs;
