-- Changes an incident's severity. Up to P0 or P1 applies that severity's effect on the rollout at once
-- (P1 freezes, P0 also engages the kill switch); the change and its reason go to the timeline.
create or replace function public.chat_set_v11_incident_severity(p_incident_id bigint, p_severity text, p_reason text)
returns table (incident_id bigint, severity text, previous_severity text, status text, rollout_version bigint)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_reason text := chat_v11.checked_reason(p_reason);
    v_incident chat_v11.incident;
    v_version bigint;
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
begin
    perform chat_v11.begin_write('chat_set_v11_incident_severity');
    perform chat_v11.lock_state();  -- lock order: the state row, then incident rows
    v_incident := chat_v11.incident_for_change(p_incident_id);
    perform chat_v11.checked_severity(p_severity);
    v_version := chat_v11.set_incident_severity(v_incident, p_severity, v_reason, null, null);
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    return query select v_incident.incident_id, p_severity, v_incident.severity, v_incident.status, v_version;
end
$$;

revoke all on function public.chat_set_v11_incident_severity(bigint, text, text) from public;
grant execute on function public.chat_set_v11_incident_severity(bigint, text, text) to chat_rollout_operator;
comment on function public.chat_set_v11_incident_severity(bigint, text, text) is
'Change an incident''s severity with a reason. Raising it to P1 freezes promotion, to P0 also engages the kill '
'switch (playbook sections 4 and 7). Recorded in the timeline.';
