-- Playbook section 4, step 2 in one call: stores the gates, the checks, the state and the last 50 history
-- rows in the incident's timeline.
create or replace function public.chat_snapshot_v11_incident(p_incident_id bigint)
returns table (entry_id bigint, incident_id bigint, at timestamptz, body text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_entry chat_v11.incident_entry;
    v_gates jsonb;
begin
    perform chat_v11.begin_write('chat_snapshot_v11_incident');
    perform chat_v11.incident_for_change(p_incident_id);
    select to_jsonb(g) into v_gates from public.chat_get_v11_release_gates() as g;
    v_entry := chat_v11.incident_log(
        p_incident_id, 'snapshot',
        format('SQL snapshot: gate_p0_ok=%s, gate_p1_ok=%s, rollout_decision=%s, stage %s, kill switch %s',
               v_gates ->> 'gate_p0_ok', v_gates ->> 'gate_p1_ok', v_gates ->> 'rollout_decision',
               v_gates ->> 'stage', v_gates ->> 'kill_switch'),
        jsonb_build_object(
            'release_gates', v_gates,
            'gate_checks', (select jsonb_agg(to_jsonb(c)) from public.chat_get_v11_gate_checks() as c),
            'rollout_state', (select to_jsonb(s) from public.chat_get_v11_rollout_state() as s),
            'rollout_history', (select jsonb_agg(to_jsonb(h)) from public.chat_get_v11_rollout_history(50) as h)
        )
    );
    return query select v_entry.entry_id, v_entry.incident_id, v_entry.at, v_entry.body;
end
$$;

revoke all on function public.chat_snapshot_v11_incident(bigint) from public;
grant execute on function public.chat_snapshot_v11_incident(bigint) to chat_rollout_operator;
comment on function public.chat_snapshot_v11_incident(bigint) is
'Take the SQL snapshot of playbook section 4 (release gates, gate checks, rollout state, history 50) into the '
'incident''s timeline.';
