-- Appends one entry to an incident's timeline and returns it.
create or replace function chat_v11.incident_log(p_incident_id bigint, p_kind text, p_body text, p_data jsonb)
returns chat_v11.incident_entry
language sql
volatile
as $$
    insert into chat_v11.incident_entry (incident_id, actor, kind, body, data)
    values (p_incident_id, chat_v11.claimed_actor(), p_kind, pg_catalog.left(p_body, 2000), p_data)
    returning *
$$;

revoke all on function chat_v11.incident_log(bigint, text, text, jsonb) from public;
comment on function chat_v11.incident_log(bigint, text, text, jsonb) is
'Appends an entry (kind, text, data) to an incident timeline, recorded by session_user with the claimed actor.';
