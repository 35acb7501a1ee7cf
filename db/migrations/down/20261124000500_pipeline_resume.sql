-- Down file of 20261124000500_pipeline_resume.sql (applied by `llm-common-db rollback`).
-- Drops the resume inputs, review verdicts and totals columns (refused while pipeline_runs or
-- pipeline_steps hold rows unless --force: their values would be lost).

drop function if exists public.pipeline_set_model_config(text, text[]);

drop index if exists public.pipeline_runs_started_at_idx;
drop index if exists public.pipeline_steps_run_step_round_key;

alter table public.pipeline_steps
    drop column if exists searches,
    drop column if exists attempts;

alter table public.pipeline_runs
    drop column if exists latency_ms,
    drop column if exists completion_tokens,
    drop column if exists prompt_tokens,
    drop column if exists review_score,
    drop column if exists review_passed,
    drop column if exists inputs;
