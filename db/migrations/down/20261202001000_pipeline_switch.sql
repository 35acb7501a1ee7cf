-- Down file of 20261202001000_pipeline_switch.sql (applied by `llm-common-db rollback`).
-- Drops the rollout flags, their audit trail and the shadow runs; refused while they hold rows
-- unless --force.

drop function if exists public.pipeline_set_flag(text, boolean, numeric, text);

drop table if exists public.pipeline_shadow_runs;
drop table if exists public.pipeline_flag_changes;
drop table if exists public.pipeline_flags;
