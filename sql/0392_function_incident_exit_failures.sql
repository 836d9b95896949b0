-- The exit criteria of an incident of a severity at p_at (playbook sections 5 and 6), as what fails.
-- P0: gate_p0_ok, PROCEED, and every P0 check clean over the exit window; P1: P0 green and every P1 check
-- passing (near baseline) or not applicable; P2: none.
create or replace function chat_v11.incident_exit_failures(p_severity text, p_at timestamptz)
returns text[]
language plpgsql
stable
as $$
declare
    v_state record;
    v_failures text[] := '{}'::text[];
begin
    if p_severity = 'P2' then
        return v_failures;
    end if;
    select s.stage, s.kill_switch into v_state from chat_v11.rollout_state as s;
    select coalesce(array_agg(format('%s %s is %s: %s', c.severity, c.metric, c.status, c.explanation)
                              order by c.severity, c.metric), '{}'::text[])
      into v_failures
      from chat_v11.evaluate_checks(p_at, v_state.stage, v_state.kill_switch) as c
     where (c.severity = 'P0' and c.status <> 'pass')
        or (p_severity = 'P1' and c.severity = 'P1' and c.status not in ('pass', 'not_applicable'));
    if p_severity = 'P0' then
        v_failures := v_failures || chat_v11.p0_exit_failures(p_at);
    end if;
    return v_failures;
end
$$;

revoke all on function chat_v11.incident_exit_failures(text, timestamptz) from public;
comment on function chat_v11.incident_exit_failures(text, timestamptz) is
'What keeps the exit criteria of a P0/P1 incident from holding at p_at (empty when they hold; P2 has none).';
