-- Down file of 20261202001200_pipeline_dashboard.sql (applied by `llm-common-db rollback`).
-- Drops the dashboard's report functions and the model-switch audit trail (refused while
-- model_config_changes holds rows, unless --force: the audit would be lost). The rollback then
-- re-runs the package's earlier files, which restore pipeline_set_model_config as
-- 20261124000500_pipeline_resume.sql defined it.

drop function if exists public.pipeline_run_page(
    text, text, text, text, timestamptz, timestamptz, integer, integer);
drop function if exists public.pipeline_model_report(text, timestamptz, timestamptz, text);

drop function if exists public.pipeline_configure_step(text, text[], text);

drop table if exists public.model_config_changes;

drop index if exists public.pipeline_runs_started_at_id_idx;
