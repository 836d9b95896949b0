-- Every release-gate check as of p_at, one row per check, with its explanation.
create or replace function public.chat_get_v11_gate_checks(p_at timestamptz default pg_catalog.now())
returns table (
    metric text,
    severity text,
    scope text,
    "window" interval,
    value numeric,
    baseline numeric,
    threshold numeric,
    volume numeric,
    status text,
    explanation text
)
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    select c.metric, c.severity, c.scope, c."window", c.value, c.baseline, c.threshold, c.volume, c.status,
           c.explanation
      from (select 1) as one
      left join chat_v11.state_at(coalesce(p_at, pg_catalog.now())) as h on true
     cross join lateral chat_v11.evaluate_checks(
         coalesce(p_at, pg_catalog.now()), coalesce(h.stage, 'off'), coalesce(h.kill_switch, false)
     ) as c
$$;

revoke all on function public.chat_get_v11_gate_checks(timestamptz) from public;
grant execute on function public.chat_get_v11_gate_checks(timestamptz) to chat_rollout_reader;
comment on function public.chat_get_v11_gate_checks(timestamptz) is
'One row per release-gate check as of p_at (default now): metric, scope, window, value, baseline, '
'threshold, volume, status (pass | fail | inconclusive | not_applicable) and why. Read-only.';
