-- Closes a resolved incident, only while its exit criteria still hold (checked again now: a relapse after
-- resolved blocks the close) and with a complete postmortem.
create or replace function public.chat_close_v11_incident(p_incident_id bigint, p_reason text)
returns table (incident_id bigint, severity text, status text, closed_at timestamptz)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_reason text := chat_v11.checked_reason(p_reason);
    v_incident chat_v11.incident;
    v_now timestamptz;
    v_failures text[];
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
begin
    perform chat_v11.begin_write('chat_close_v11_incident');
    -- lock order: the state row, then the incident row; a guardrail run deciding now is seen by the re-check
    perform chat_v11.lock_state();
    v_incident := chat_v11.incident_for_change(p_incident_id);
    v_now := clock_timestamp();
    if v_incident.status <> 'resolved' then
        raise exception using
            errcode = 'RO032',
            message = format('incident %s cannot be closed: it is %s, not resolved', p_incident_id, v_incident.status),
            detail = 'An incident is closed after it is resolved (its exit criteria held).',
            hint = format('Resolve it first: chat_set_v11_incident_status(%s, ''resolved'', reason).', p_incident_id);
    end if;
    -- GUARD: the exit criteria of its severity, again at close time (the same check as the resolve)
    v_failures := chat_v11.incident_exit_failures(v_incident.severity, v_now);
    if cardinality(v_failures) > 0 then
        raise exception using
            errcode = 'RO037',
            message = format('incident %s cannot be closed: its %s exit criteria fail now (they held when it was '
                             'resolved at %s UTC)', p_incident_id, v_incident.severity,
                             to_char(v_incident.resolved_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS')),
            detail = array_to_string(v_failures, '; '),
            hint = format('A relapse: reopen it with chat_set_v11_incident_status(%s, ''open'', reason), keep the '
                          || 'kill switch on (P0) and promotion frozen, mitigate, and resolve again once the exit '
                          || 'criteria hold (chat_get_v11_gate_checks()).', p_incident_id);
    end if;
    if v_incident.postmortem is null or cardinality(chat_v11.postmortem_problems(v_incident.postmortem)) > 0 then
        raise exception using
            errcode = 'RO034',
            message = format('incident %s cannot be closed without its postmortem', p_incident_id),
            detail = 'The playbook requires a postmortem (section 10): timeline, root cause, what worked and what '
                || 'did not, action items with owners and deadlines, decision log.',
            hint = format('Store it with chat_put_v11_postmortem(%s, ''{...}'').', p_incident_id);
    end if;
    update chat_v11.incident as i set status = 'closed', closed_at = v_now where i.incident_id = p_incident_id;
    perform chat_v11.incident_log(p_incident_id, 'status', format('status resolved -> closed: %s', v_reason),
                                  jsonb_build_object('from', 'resolved', 'to', 'closed'));
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    return query select v_incident.incident_id, v_incident.severity, 'closed'::text, v_now;
end
$$;

revoke all on function public.chat_close_v11_incident(bigint, text) from public;
grant execute on function public.chat_close_v11_incident(bigint, text) to chat_rollout_operator;
comment on function public.chat_close_v11_incident(bigint, text) is
'Close a resolved incident; refused (RO032) before it is resolved, (RO037) while its exit criteria fail now '
'(checked again at close: a relapse after resolved blocks it) and (RO034) without a complete postmortem.';
