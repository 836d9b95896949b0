-- The P0 guardrail: when a P0 check fails at p_at and the auto_kill policy is on, engages the kill
-- switch (action auto_kill, actor guardrail) in the caller's transaction. Returns the new version or null.
create or replace function chat_v11.auto_kill(p_at timestamptz, p_source text)
returns bigint
language plpgsql
volatile
as $$
declare
    v_state record;
    v_failing text[];
    v_gates record;
    v_reason text;
    v_new record;
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
begin
    if not coalesce((select (p.value #>> '{}')::boolean from chat_v11.policy as p where p.key = 'auto_kill'), true) then
        return null;
    end if;
    select s.kill_switch, s.stage into v_state from chat_v11.rollout_state as s;
    if v_state.kill_switch then
        return null;  -- already stopped: nothing to add
    end if;
    select array_agg(format('%s = %s (%s)', c.metric, coalesce(c.value::text, 'n/a'), c.explanation)
                     order by c.metric)
      into v_failing
      from chat_v11.evaluate_checks(p_at, v_state.stage, false) as c
     where c.severity = 'P0' and c.status = 'fail';
    if v_failing is null then
        return null;
    end if;

    v_state := chat_v11.lock_state();
    if v_state.kill_switch then
        return null;  -- an operator got there first
    end if;
    v_reason := pg_catalog.left(format('auto_kill by the P0 guardrail (%s, evidence at %s UTC): %s',
                                       p_source, pg_catalog.to_char(p_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                                       array_to_string(v_failing, '; ')), 500);
    select g.* into v_gates from chat_v11.current_gates(p_at) as g;
    v_new := chat_v11.apply_transition(
        'auto_kill', v_state.stage, true, true, v_reason, null, v_gates.snapshot, 'guardrail'
    );
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    raise warning 'chat-rollout: %', v_reason;
    return v_new.version;
end
$$;

revoke all on function chat_v11.auto_kill(timestamptz, text) from public;
comment on function chat_v11.auto_kill(timestamptz, text) is
'P0 guardrail: engages the kill switch (auto_kill, actor guardrail) when a P0 check fails at p_at and the '
'auto_kill policy is on; returns the new state version, or null when nothing was done.';
