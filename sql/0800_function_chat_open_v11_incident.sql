-- Declares an incident (playbook section 4, step 1): P0/P1 freeze promotion at once, P0 engages the kill switch.
create or replace function public.chat_open_v11_incident(p_severity text, p_summary text)
returns table (
    incident_id bigint,
    severity text,
    status text,
    summary text,
    opened_at timestamptz,
    opened_by text,
    rollout_version bigint
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_summary text := chat_v11.checked_reason(p_summary);
    v_incident chat_v11.incident;
    v_version bigint;
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
begin
    perform chat_v11.begin_write('chat_open_v11_incident');
    perform chat_v11.checked_severity(p_severity);
    if p_severity in ('P0', 'P1') then
        perform chat_v11.lock_state();  -- lock order: the state row, then incident rows
    end if;
    insert into chat_v11.incident (severity, summary, opened_actor)
    values (p_severity, v_summary, chat_v11.claimed_actor())
    returning * into v_incident;
    perform chat_v11.incident_log(v_incident.incident_id, 'opened',
                                  format('%s incident declared: %s', p_severity, v_summary), null);
    v_version := chat_v11.incident_rollout_effect(
        p_severity, pg_catalog.left(format('incident %s %s: %s', v_incident.incident_id, p_severity, v_summary), 500),
        null
    );
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    return query select v_incident.incident_id, v_incident.severity, v_incident.status, v_incident.summary,
                        v_incident.opened_at, v_incident.opened_by, v_version;
end
$$;

revoke all on function public.chat_open_v11_incident(text, text) from public;
grant execute on function public.chat_open_v11_incident(text, text) to chat_rollout_operator;
comment on function public.chat_open_v11_incident(text, text) is
'Declare an incident (P0, P1 or P2) with a summary. P0 and P1 freeze promotion at once; P0 also engages the '
'kill switch unless it is on (playbook section 4). Returns the incident and the rollout version it wrote.';
