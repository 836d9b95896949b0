-- Who claims the change beside session_user: the application's chat.actor setting, or null.
create or replace function chat_v11.claimed_actor()
returns text
language sql
stable
as $$
    select pg_catalog.left(nullif(pg_catalog.btrim(pg_catalog.current_setting('chat.actor', true)), ''), 200)
$$;

revoke all on function chat_v11.claimed_actor() from public;
comment on function chat_v11.claimed_actor() is
'The actor an application claims with SET chat.actor (kept beside session_user, never instead of it).';
