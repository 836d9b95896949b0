-- Read-only views for the hot read path (SPEC 4: "a read-only view may be granted SELECT to the reader role
-- behind an API function"). Nothing but views lives here; only chat_rollout_reader (and its members) may use it.
create schema chat_v11_read;
revoke all on schema chat_v11_read from public;
grant usage on schema chat_v11_read to chat_rollout_reader;
comment on schema chat_v11_read is
'chat-rollout read-only views behind public.chat_get_v11_* functions (SELECT for chat_rollout_reader only).';
