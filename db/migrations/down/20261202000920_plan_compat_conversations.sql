-- Down file of 20261202000920_plan_compat_conversations.sql (applied by `llm-common-db rollback`).

drop function if exists public.cleanup_conversations();
