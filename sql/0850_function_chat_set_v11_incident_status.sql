-- Moves an incident: open -> mitigated -> resolved (only when its exit criteria hold), resolved -> open (reopen).
-- Closing is chat_close_v11_incident (it needs the postmortem).
create or replace function public.chat_set_v11_incident_status(p_incident_id bigint, p_status text, p_reason text)
returns table (incident_id bigint, severity text, status text, previous_status text, changed_at timestamptz)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_reason text := chat_v11.checked_reason(p_reason);
    v_incident chat_v11.incident;
    v_now timestamptz := clock_timestamp();
    v_failures text[];
begin
    perform chat_v11.begin_write('chat_set_v11_incident_status');
    v_incident := chat_v11.incident_for_change(p_incident_id);
    if p_status is null
       or (v_incident.status, p_status) not in (
           ('open', 'mitigated'), ('open', 'resolved'), ('mitigated', 'resolved'), ('resolved', 'open'),
           ('mitigated', 'open')
       ) then
        raise exception using
            errcode = 'RO032',
            message = format('incident %s cannot go from %s to %s', p_incident_id, v_incident.status,
                             chat_v11.shown(p_status)),
            detail = 'Statuses: open -> mitigated -> resolved -> closed; a resolved incident may be reopened.',
            hint = case when p_status = 'closed' then 'Close with chat_close_v11_incident(id, reason).'
                        else 'Pass mitigated, resolved or open.' end;
    end if;
    if p_status = 'resolved' then
        -- GUARD: the exit criteria of the incident's severity (playbook sections 5 and 6)
        v_failures := chat_v11.incident_exit_failures(v_incident.severity, v_now);
        if cardinality(v_failures) > 0 then
            raise exception using
                errcode = 'RO033',
                message = format('incident %s cannot be resolved: its %s exit criteria do not hold',
                                 p_incident_id, v_incident.severity),
                detail = array_to_string(v_failures, '; '),
                hint = 'Keep mitigating; resolve once the gates show the exit criteria (chat_get_v11_gate_checks()).';
        end if;
        perform chat_v11.incident_log(p_incident_id, 'exit_criteria',
                                      format('%s exit criteria hold', v_incident.severity),
                                      (select to_jsonb(g) from chat_v11.current_gates(v_now) as g));
    end if;
    update chat_v11.incident as i
       set status = p_status,
           mitigated_at = case when p_status = 'mitigated' then v_now else i.mitigated_at end,
           resolved_at = case when p_status = 'resolved' then v_now when p_status = 'open' then null
                              else i.resolved_at end
     where i.incident_id = p_incident_id;
    perform chat_v11.incident_log(p_incident_id, 'status',
                                  format('status %s -> %s: %s', v_incident.status, p_status, v_reason),
                                  jsonb_build_object('from', v_incident.status, 'to', p_status));
    return query select v_incident.incident_id, v_incident.severity, p_status, v_incident.status, v_now;
end
$$;

revoke all on function public.chat_set_v11_incident_status(bigint, text, text) from public;
grant execute on function public.chat_set_v11_incident_status(bigint, text, text) to chat_rollout_operator;
comment on function public.chat_set_v11_incident_status(bigint, text, text) is
'Move an incident: open -> mitigated -> resolved (refused with RO033 while the exit criteria of its severity '
'fail), or reopen a resolved one. Recorded in the timeline.';
