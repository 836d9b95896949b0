-- The postmortem of an incident as stored (null until one is put), for readers; RO030 for an unknown incident.
create or replace function public.chat_get_v11_postmortem(p_incident_id bigint)
returns jsonb
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    select (chat_v11.get_incident(p_incident_id)).postmortem
$$;

revoke all on function public.chat_get_v11_postmortem(bigint) from public;
grant execute on function public.chat_get_v11_postmortem(bigint) to chat_rollout_reader;
comment on function public.chat_get_v11_postmortem(bigint) is
'The postmortem of the incident (JSON, playbook section 10), or null when none was put yet; RO030 for an unknown '
'incident. Read-only.';
