-- Internal tables and helpers of the Chat v1.1 rollout control plane.
-- Nobody but the owner may use it directly: the API is the chat_*_v11_* functions in public.
create schema chat_v11;
revoke all on schema chat_v11 from public;
comment on schema chat_v11 is
'chat-rollout internals (Chat protocol v1.1 staged rollout). Write only through public.chat_*_v11_* functions.';
