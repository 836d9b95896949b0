-- Stores the gate verdict of the committed state at p_at as the most recent evaluation (chat_v11.gate_evaluation),
-- for the kill to record without evaluating before its commit (SPEC 4.3). Called by ingestion after each batch
-- (where new evidence arrives). It never makes its caller wait and never fails it:
-- - an evaluation at most 5 seconds old made for the same stage and kill switch is kept (several batches a bucket);
-- - the row is taken with SKIP LOCKED: when another writer is storing one, that one is as fresh, nothing is done;
-- - every other lock (the state table, the catalog behind a DDL) is tried for 10 ms at most; when one is busy the
--   evaluation is skipped (the next batch stores one, and a kill evaluates itself meanwhile).
-- Returns true when it stored an evaluation.
create or replace function chat_v11.remember_gates(p_by text, p_at timestamptz)
returns boolean
language plpgsql
volatile
as $$
declare
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
    v_state record;
    v_last record;
    v_snapshot jsonb;
    v_stored boolean := false;
begin
    begin
        perform pg_catalog.set_config('lock_timeout', '10ms', true);
        select s.stage, s.kill_switch, s.promotion_frozen, s.version into v_state from chat_v11.rollout_state as s;
        select e.evaluated_at, e.stage, e.kill_switch into v_last from chat_v11.gate_evaluation as e where e.id;
        if v_last.evaluated_at is null
           or v_last.evaluated_at < p_at - interval '5 seconds'
           or v_last.evaluated_at > p_at
           or v_last.stage <> v_state.stage
           or v_last.kill_switch <> v_state.kill_switch then
            perform from chat_v11.gate_evaluation as e where e.id for update skip locked;
            if found or v_last.evaluated_at is null then
                select pg_catalog.jsonb_build_object(
                           'evaluated_at', pg_catalog.to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                           'gate_p0_ok', g.gate_p0_ok,
                           'gate_p1_ok', g.gate_p1_ok,
                           'rollout_decision', g.rollout_decision,
                           'failing_checks', pg_catalog.to_jsonb(g.failing_checks)
                       )
                  into v_snapshot
                  from chat_v11.evaluate_gates(
                      p_at, v_state.stage, v_state.kill_switch, v_state.promotion_frozen, null, null
                  ) as g;
                insert into chat_v11.gate_evaluation as e (
                    id, evaluated_at, evaluated_by, stage, kill_switch, state_version, snapshot
                )
                values (true, p_at, p_by, v_state.stage, v_state.kill_switch, v_state.version, v_snapshot)
                    on conflict (id) do update
                   set evaluated_at = excluded.evaluated_at,
                       evaluated_by = excluded.evaluated_by,
                       stage = excluded.stage,
                       kill_switch = excluded.kill_switch,
                       state_version = excluded.state_version,
                       snapshot = excluded.snapshot
                 where e.evaluated_at < excluded.evaluated_at;
                v_stored := found;
            end if;
        end if;
    exception when lock_not_available then
        v_stored := false;
    end;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    return v_stored;
end
$$;

revoke all on function chat_v11.remember_gates(text, timestamptz) from public;
comment on function chat_v11.remember_gates(text, timestamptz) is
'Stores the gate verdict of the committed state at p_at (by ingestion) as the most recent evaluation, '
'unless one at most 5 s old exists for the same stage and kill switch; never waits more than 10 ms for a lock.';
