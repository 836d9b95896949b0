-- Automatic progression (SPEC 9), safe to run every few seconds from the scheduler that runs the guardrails, and
-- idempotent: promotes at most one stage per call, as action auto_promote with actor guardrail, when the policy of
-- the stage promoted INTO has auto_promote and the promotion a person could make now would pass every guard of
-- chat_set_v11_rollout_state: not killed, not frozen, the Go/No-Go (gates, no open P0/P1 incident, no active
-- alert), the observation window, and the approvals (never the scheduler login's own). A read first (no lock while
-- nothing is to be done); then the state lock (chat_v11.lock_state, RO010 when busy) and everything again under it:
-- a run that waited while anything changed the rollout (a kill, another run's promotion) promotes nothing, so
-- concurrent runs cannot promote twice and nothing promotes after a kill. Returns one row: what it did or why not.
create or replace function public.chat_run_v11_progression()
returns table (
    action text,
    stage text,
    next_stage text,
    version bigint,
    detail text,
    blockers text[]
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
    v_seen record;
    v_state record;
    v_gates record;
    v_blockers text[];
    v_timeout interval;
    v_new record;
    v_approvals record;
    v_percent numeric;
    v_reason text;
begin
    perform chat_v11.begin_write('chat_run_v11_progression');
    select p.* into v_seen from chat_v11.peek_state() as p;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    -- two passes: the read without the lock, then (only when it would promote) the same under the lock
    for v_pass in 1..2 loop
        if v_pass = 2 then
            begin
                v_state := chat_v11.lock_state();
                v_timeout := pg_catalog.current_setting('chat_rollout.lock_budget')::interval;
            exception when lock_not_available then
                perform chat_v11.raise_state_locked(
                    coalesce(v_timeout, pg_catalog.current_setting('chat_rollout.lock_budget', true)::interval)
                );
            end;
            -- GUARD: anything that changed the rollout while this run waited (a kill, a hold, another run's
            -- promotion) ends this run; the next run decides from the new state
            if v_state.version <> v_seen.version then
                perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
                return query select 'none'::text, v_state.stage, null::text, v_state.version,
                                    format('the rollout changed while this run waited (version %s became %s, %s by '
                                           '%s): nothing promoted, the next run decides', v_seen.version,
                                           v_state.version, v_state.reason, v_state.changed_by),
                                    '{}'::text[];
                return;
            end if;
        end if;
        select g.* into v_gates from chat_v11.current_gates(pg_catalog.clock_timestamp()) as g;
        v_blockers := v_gates.blockers;
        if v_gates.next_stage is not null and not coalesce(
            (select p.auto_promote from chat_v11.stage_policy as p where p.stage = v_gates.next_stage), false
        ) then
            v_blockers := array[format('auto_promote is off for %s: promote by hand, or set it with '
                                       'chat_set_v11_stage_policy(%L, ''{"auto_promote": true}'')',
                                       v_gates.next_stage, v_gates.next_stage)] || v_blockers;
        end if;
        if pg_catalog.cardinality(v_blockers) > 0 then
            perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
            return query select 'none'::text, v_seen.stage, v_gates.next_stage, v_seen.version,
                                format('no automatic promotion from %s: %s blocker(s)', v_seen.stage,
                                       pg_catalog.cardinality(v_blockers)),
                                v_blockers;
            return;
        end if;
    end loop;

    -- the write's other locks within the budget, as chat_set_v11_rollout_state takes them
    begin
        perform from chat_v11.stage as t where t.stage = v_gates.next_stage for key share;
        lock table chat_v11.rollout_history in row exclusive mode;
        lock table chat_v11.incident in access share mode;
    exception when lock_not_available then
        perform chat_v11.raise_state_locked(v_timeout);
    end;
    select a.* into v_approvals from chat_v11.approval_status(pg_catalog.clock_timestamp(), v_gates.next_stage) as a;
    v_reason := pg_catalog.left(format(
        'guardrail: automatic promotion from %s to %s: the Go/No-Go holds, %s observed since %s UTC, %s of %s '
        'approvals%s', v_state.stage, v_gates.next_stage, v_state.stage,
        pg_catalog.to_char((v_gates.observed_until - (select s.min_observation from chat_v11.stage as s
                                                      where s.stage = v_state.stage)) at time zone 'UTC',
                           'YYYY-MM-DD HH24:MI:SS'),
        v_approvals.valid, v_approvals.required,
        case when v_approvals.valid > 0 then format(' (%s)', array_to_string(v_approvals.approvers, ', '))
             else '' end
    ), 500);
    v_new := chat_v11.apply_transition(
        'auto_promote', v_gates.next_stage, false, false, v_reason, null, v_gates.snapshot, 'guardrail'
    );
    select t.traffic_percent into v_percent from chat_v11.stage as t where t.stage = v_new.stage;
    -- NO SURPRISE: the database moved traffic by itself; say so
    raise notice '%', format('auto_promote: v1.1 traffic goes from %s to %s (%s %%), version %s',
                             v_state.stage, v_new.stage, v_percent, v_new.version);
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    return query select 'auto_promote'::text, v_new.stage, v_gates.next_stage, v_new.version, v_reason,
                        '{}'::text[];
end
$$;

revoke all on function public.chat_run_v11_progression() from public;
grant execute on function public.chat_run_v11_progression() to chat_rollout_ingest;
comment on function public.chat_run_v11_progression() is
'Automatic progression to run every few seconds (idempotent): promotes one stage (action auto_promote, actor '
'guardrail) when the next stage''s policy has auto_promote and every guard of a manual promotion holds now: not '
'killed or frozen, the Go/No-Go (no open P0/P1 incident), the observation window, the approvals (never the '
'scheduler login''s own). Re-checked under the state lock; a run that waited while the rollout changed promotes '
'nothing. Returns one row: auto_promote, or none with the blockers. A NOTICE says when it promotes.';
