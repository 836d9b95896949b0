-- The gate verdict of the current (locked) state, as stored in a history row's gate_snapshot.
create or replace function chat_v11.current_gates(p_at timestamptz)
returns table (
    gate_p0_ok boolean,
    gate_p1_ok boolean,
    rollout_decision text,
    promotion_allowed boolean,
    next_stage text,
    observed_until timestamptz,
    failing_checks text[],
    go_no_go_blockers text[],
    blockers text[],
    snapshot jsonb
)
language sql
stable
as $$
    select g.*,
           pg_catalog.jsonb_build_object(
               'evaluated_at', pg_catalog.to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               'gate_p0_ok', g.gate_p0_ok,
               'gate_p1_ok', g.gate_p1_ok,
               'rollout_decision', g.rollout_decision,
               'failing_checks', pg_catalog.to_jsonb(g.failing_checks)
           )
      from chat_v11.rollout_state as s
      cross join lateral chat_v11.state_at('infinity') as h
      cross join lateral chat_v11.evaluate_gates(
          p_at, s.stage, s.kill_switch, s.promotion_frozen, chat_v11.open_incident_at('infinity'), h.stage_since
      ) as g
$$;

revoke all on function chat_v11.current_gates(timestamptz) from public;
comment on function chat_v11.current_gates(timestamptz) is
'Gate verdict and Go/No-Go of the current state at p_at, with the jsonb snapshot kept in the history.';
