-- Down file of 20261124000300_conversations.sql (applied by `llm-common-db rollback`).
-- Drops every user's conversation history and summaries; refused while they hold rows unless
-- --force. Functions first: conversation_append returns the conversations row type.

drop function if exists public.conversation_cleanup(timestamptz);
drop function if exists public.conversation_delete_user(uuid);
drop function if exists public.conversation_export_user(uuid);
drop function if exists public.conversation_save_summary(
    uuid, text, integer, text, bigint, timestamptz, timestamptz, text
);
drop function if exists public.conversation_context(uuid, text, integer);
drop function if exists public.conversation_append(uuid, text, text, text, text, integer);

drop table if exists public.conversation_summaries;
drop table if exists public.conversation_counters;
drop table if exists public.conversations;
