-- One UTC timeline for an incident: its entries, the rollout history and every change of the gate verdict
-- from 15 minutes before it was declared (or before the guardrail's evidence) until it was closed (or now):
-- the postmortem's first section.
create or replace function public.chat_get_v11_incident_timeline(p_incident_id bigint)
returns table (at timestamptz, source text, kind text, who text, body text)
language plpgsql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_i chat_v11.incident;
    v_from timestamptz;
    v_to timestamptz;
    v_step interval;
begin
    v_i := chat_v11.get_incident(p_incident_id);
    -- from 15 minutes before the declaration, or before the guardrail's evidence when that is older
    select least(v_i.opened_at, min((e.data ->> 'at')::timestamptz)) - interval '15 minutes'
      into v_from
      from chat_v11.incident_entry as e
     where e.incident_id = p_incident_id and e.kind in ('opened', 'escalation');
    v_to := coalesce(v_i.closed_at, pg_catalog.clock_timestamp());
    v_step := greatest(interval '1 minute', (v_to - v_from) / 500);
    return query
    with entries as (
        select e.at, 'incident'::text as source, e.kind, coalesce(e.actor || ' (' || e.recorded_by || ')', e.recorded_by),
               e.body
          from chat_v11.incident_entry as e
         where e.incident_id = p_incident_id
    ),
    rollout as (
        select h.changed_at, 'rollout'::text, h.action,
               coalesce(h.actor || ' (' || h.changed_by || ')', h.changed_by),
               format('version %s: %s -> %s, kill switch %s, %s: %s', h.version, coalesce(h.from_stage, '-'),
                      h.to_stage, case when h.to_kill_switch then 'on' else 'off' end,
                      case when h.promotion_frozen then 'frozen' else 'not frozen' end, h.reason)
          from chat_v11.rollout_history as h
         where h.changed_at between v_from and v_to
    ),
    verdicts as (
        select t.at, g.gate_p0_ok, g.gate_p1_ok, g.rollout_decision, g.failing_checks
          from generate_series(v_from, v_to, v_step) as t (at)
          left join chat_v11.state_at(t.at) as s on true
         cross join lateral chat_v11.evaluate_gates(
             t.at, coalesce(s.stage, 'off'), coalesce(s.kill_switch, false), coalesce(s.promotion_frozen, false),
             null, s.stage_since
         ) as g
    ),
    changes as (
        select v.at, 'gates'::text, 'verdict'::text, 'gates'::text,
               format('gate_p0_ok=%s, gate_p1_ok=%s, rollout_decision=%s%s', v.gate_p0_ok, v.gate_p1_ok,
                      v.rollout_decision,
                      case when cardinality(v.failing_checks) > 0
                          then ' (' || array_to_string(v.failing_checks, ', ') || ')' else '' end)
          from (
              select v.*, lag(row(v.gate_p0_ok, v.gate_p1_ok, v.rollout_decision, v.failing_checks)::text)
                              over (order by v.at) as previous
                from verdicts as v
          ) as v
         where v.previous is distinct from row(v.gate_p0_ok, v.gate_p1_ok, v.rollout_decision, v.failing_checks)::text
    )
    select * from entries
    union all select * from rollout
    union all select * from changes
    order by 1, 2;
end
$$;

revoke all on function public.chat_get_v11_incident_timeline(bigint) from public;
grant execute on function public.chat_get_v11_incident_timeline(bigint) to chat_rollout_reader;
comment on function public.chat_get_v11_incident_timeline(bigint) is
'One UTC timeline of an incident: its entries (facts, decisions, actions, roles, snapshots), the rollout history '
'and each change of the gate verdict from 15 minutes before it was declared until closed or now. Read-only.';
