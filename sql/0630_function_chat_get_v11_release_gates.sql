-- The release gates as of p_at: gate_p0_ok, gate_p1_ok, rollout_decision and the Go/No-Go with blockers.
create or replace function public.chat_get_v11_release_gates(p_at timestamptz default pg_catalog.now())
returns table (
    gate_p0_ok boolean,
    gate_p1_ok boolean,
    rollout_decision text,
    promotion_allowed boolean,
    stage text,
    kill_switch boolean,
    promotion_frozen boolean,
    open_incident_id bigint,
    next_stage text,
    evaluated_at timestamptz,
    failing_checks text[],
    blockers text[]
)
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    select g.gate_p0_ok, g.gate_p1_ok, g.rollout_decision, g.promotion_allowed,
           coalesce(h.stage, 'off'), coalesce(h.kill_switch, false), coalesce(h.promotion_frozen, false),
           chat_v11.open_incident_at(coalesce(p_at, pg_catalog.now())), g.next_stage, coalesce(p_at, pg_catalog.now()), g.failing_checks, g.blockers
      from (select 1) as one
      left join chat_v11.state_at(coalesce(p_at, pg_catalog.now())) as h on true
     cross join lateral chat_v11.evaluate_gates(
         coalesce(p_at, pg_catalog.now()), coalesce(h.stage, 'off'), coalesce(h.kill_switch, false),
         coalesce(h.promotion_frozen, false), chat_v11.open_incident_at(coalesce(p_at, pg_catalog.now())),
         h.stage_since
     ) as g
$$;

revoke all on function public.chat_get_v11_release_gates(timestamptz) from public;
grant execute on function public.chat_get_v11_release_gates(timestamptz) to chat_rollout_reader;
comment on function public.chat_get_v11_release_gates(timestamptz) is
'Source of truth: the release gates as of p_at (default now). gate_p0_ok, gate_p1_ok, rollout_decision '
'(PROCEED | HOLD | ROLLBACK), promotion_allowed (the Go/No-Go) and blockers in words. Missing data never '
'passes. Read-only.';
