-- Downgrade of revision 0002: back to the 0001 functions, without metric samples.
-- GUARD: metric samples are operator data; dropped only when confirmed with
-- alembic -x drop_data=yes downgrade 0001 (which sets chat_rollout.drop_data for this transaction).
do $guard$
declare
    v_samples bigint;
begin
    select count(*) into v_samples from chat_v11.metric_sample;
    if v_samples > 0 and coalesce(current_setting('chat_rollout.drop_data', true), '') <> 'yes' then
        raise exception using
            errcode = 'RO013',
            message = 'downgrade refused: it would drop operator data',
            detail = format('%s metric samples would be lost.', v_samples),
            hint = 'Keep a copy first (pg_dump -t chat_v11.metric_sample), then confirm with: '
                || 'alembic -x drop_data=yes downgrade 0001';
    end if;
end
$guard$;

drop function public.chat_run_v11_guardrails();
drop function public.chat_put_v11_metric_samples(jsonb);
drop function public.chat_put_v11_metric_samples(text[], text[], timestamptz[], bigint[], bigint[], double precision[]);
drop function chat_v11.put_samples(text[], text[], timestamptz[], bigint[], bigint[], double precision[]);
drop function chat_v11.reject_sample(bigint, bigint, text, text, text);
drop function chat_v11.sample_shape_problem(jsonb);
drop function public.chat_set_v11_metric_rule(text, jsonb);
drop function chat_v11.p0_exit_failures(timestamptz);
drop function chat_v11.auto_kill(timestamptz, text);
drop function chat_v11.is_timestamptz(text);
drop function chat_v11.sample_problem(text, text, text, timestamptz, bigint, bigint, double precision, timestamptz);
drop function chat_v11.cohort_window(text, text, timestamptz, timestamptz);
drop function chat_v11.normal_cdf(double precision);
drop table chat_v11.metric_sample;

-- restored from revision 0001: sql/0400_function_evaluate_checks.sql
-- One row per release-gate check at p_at, for a given stage and kill switch (SPEC 4.5).
-- Fail closed: this schema version stores no metric samples yet, so P0 checks are inconclusive,
-- and P1 checks are inconclusive too unless there is no v1.1 traffic by design.
create or replace function chat_v11.evaluate_checks(
    p_at timestamptz,
    p_stage text,
    p_kill_switch boolean,
    p_p0_window interval default null
)
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
    explanation text,
    newest_bucket timestamptz,
    oldest_bucket timestamptz
)
language sql
stable
as $$
    select
        m.metric,
        m.severity,
        case
            when m.severity = 'P1' then 'canary vs control'
            when m.rule = 'threshold' then 'per cohort'
            else 'all cohorts'
        end,
        case when m.severity = 'P0' then coalesce(p_p0_window, m.window_length) else m.window_length end,
        null::numeric,
        m.static_baseline,
        case when m.severity = 'P0' then m.threshold end,
        0::numeric,
        case
            when m.severity = 'P1' and (p_kill_switch or p_stage = 'off') then 'not_applicable'
            else 'inconclusive'
        end,
        case
            when m.severity = 'P1' and p_kill_switch
                then 'not applicable: the kill switch is on, so there is no v1.1 traffic by design'
            when m.severity = 'P1' and p_stage = 'off'
                then 'not applicable: stage off, so there is no v1.1 traffic by design'
            else format(
                'no data: no samples in the %s min before %s UTC (needs %s %s); '
                'this schema version stores no metric samples yet, so the check fails closed',
                (extract(epoch from m.window_length) / 60)::numeric(10, 1),
                pg_catalog.to_char(p_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                m.min_volume,
                case when m.kind = 'rate' then 'events' else 'reported buckets' end
            )
        end,
        null::timestamptz,
        null::timestamptz
      from chat_v11.metric as m
     order by m.ordinal
$$;

revoke all on function chat_v11.evaluate_checks(timestamptz, text, boolean, interval) from public;
comment on function chat_v11.evaluate_checks(timestamptz, text, boolean, interval) is
'Release-gate checks at p_at for the given stage and kill switch: pass, fail, inconclusive or not_applicable.';

-- restored from revision 0001: sql/0640_function_chat_set_v11_rollout_state.sql
-- The playbook's control call: kill, resume, hold, rollback or promote, by its arguments (SPEC 4.6).
-- The kill switch is never refused for red gates or a wrong stage; everything else is guarded.
create or replace function public.chat_set_v11_rollout_state(p_stage text, p_kill_switch boolean, p_reason text)
returns table (
    stage text,
    traffic_percent numeric,
    kill_switch boolean,
    promotion_frozen boolean,
    reason text,
    changed_by text,
    actor text,
    changed_at timestamptz,
    version bigint,
    note text
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_reason text := chat_v11.checked_reason(p_reason);
    -- record, not chat_v11.rollout_state: a rowtype variable would wait for the table unbounded
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
    v_state record;
    v_gates record;
    v_now timestamptz;
    v_current_ordinal integer;
    v_target_ordinal integer;
    v_action text;
    v_to_stage text;
    v_to_kill boolean;
    v_frozen boolean;
    v_note text;
    v_new record;
begin
    if p_kill_switch is null then
        raise exception using
            errcode = 'RO011',
            message = 'p_kill_switch must be true or false',
            detail = 'A null kill switch does not say whether to stop or to resume.',
            hint = 'Pass true to engage the kill switch, false to hold, roll back, promote or resume.';
    end if;

    v_state := chat_v11.lock_state();
    v_now := pg_catalog.clock_timestamp();
    select s.ordinal into v_current_ordinal from chat_v11.stage as s where s.stage = v_state.stage;
    select s.ordinal into v_target_ordinal from chat_v11.stage as s where s.stage = p_stage;
    select g.* into v_gates from chat_v11.current_gates(v_now) as g;

    if p_kill_switch then
        -- KILL: always accepted; a lower stage also rolls back, anything else is noted, not refused
        v_action := 'kill';
        v_to_kill := true;
        v_frozen := true;
        v_to_stage := v_state.stage;
        if v_target_ordinal is null then
            v_note := format('stage %s is unknown: not applied, the kill switch is on at stage %s',
                             coalesce(quote_literal(p_stage), 'null'), v_state.stage);
        elsif v_target_ordinal > v_current_ordinal then
            v_note := format('stage %s is above the current stage %s: not applied, the kill switch is on at stage %s',
                             p_stage, v_state.stage, v_state.stage);
        else
            v_to_stage := p_stage;
        end if;
    else
        if v_target_ordinal is null then
            raise exception using
                errcode = 'RO002',
                message = format('unknown stage %s', coalesce(quote_literal(p_stage), 'null')),
                detail = format('Known stages, in order: %s.',
                                (select string_agg(s.stage, ', ' order by s.ordinal) from chat_v11.stage as s)),
                hint = 'Name one of the known stages; the kill switch (p_kill_switch = true) accepts any stage.';
        end if;
        v_to_stage := p_stage;
        v_to_kill := false;
        if v_state.kill_switch then
            -- GUARD: resume only through the P0 exit criteria, never upwards
            if v_target_ordinal > v_current_ordinal then
                raise exception using
                    errcode = 'RO008',
                    message = format('resume to a higher stage is refused: %s is above the current stage %s',
                                     p_stage, v_state.stage),
                    detail = 'A resume keeps the current stage or rolls back; promotion comes later, through the gate.',
                    hint = format('Resume at %s (or lower), then promote through the Go/No-Go.', v_state.stage);
            end if;
            if not v_gates.gate_p0_ok then
                raise exception using
                    errcode = 'RO007',
                    message = 'resume refused: the P0 exit criteria do not hold',
                    detail = format('gate_p0_ok is false. Failing P0 checks: %s.',
                                    coalesce((select string_agg(f, '; ') from unnest(v_gates.failing_checks) as f),
                                             'none')),
                    hint = format('Keep the kill switch on until every P0 check has passed for %s '
                                  '(policy p0_exit_window); watch chat_get_v11_gate_checks().',
                                  chat_v11.policy_interval('p0_exit_window'));
            end if;
            v_action := 'resume';
            v_frozen := true;
        elsif v_target_ordinal = v_current_ordinal then
            v_action := 'hold';
            v_frozen := true;
        elsif v_target_ordinal < v_current_ordinal then
            v_action := 'rollback';
            v_frozen := true;
        else
            -- GUARD: promotion needs no freeze, the next stage only, the Go/No-Go and the observation window
            if v_state.promotion_frozen then
                raise exception using
                    errcode = 'RO004',
                    message = format('promotion to %s is refused: promotion is frozen', p_stage),
                    detail = format('Frozen since the last hold, rollback, kill or resume; current reason: %s',
                                    v_state.reason),
                    hint = 'Lift the freeze with chat_lift_v11_freeze(reason) once the gates are green.';
            end if;
            if p_stage is distinct from v_gates.next_stage then
                raise exception using
                    errcode = 'RO003',
                    message = format('promotion from %s to %s is refused: it skips a stage', v_state.stage, p_stage),
                    detail = format('The next stage after %s is %s.', v_state.stage, v_gates.next_stage),
                    hint = format('Promote one stage at a time: chat_set_v11_rollout_state(%L, false, reason).',
                                  v_gates.next_stage);
            end if;
            if pg_catalog.cardinality(v_gates.go_no_go_blockers) > 0 then
                raise exception using
                    errcode = 'RO005',
                    message = format('promotion to %s is refused: the Go/No-Go does not hold', p_stage),
                    detail = array_to_string(v_gates.go_no_go_blockers, '; '),
                    hint = 'Promote only with gate_p0_ok, gate_p1_ok, PROCEED and no open P0/P1 incident; '
                        || 'see chat_get_v11_release_gates() and chat_get_v11_gate_checks().';
            end if;
            if v_gates.observed_until is null or v_gates.observed_until > v_now then
                raise exception using
                    errcode = 'RO006',
                    message = format('promotion to %s is refused: stage %s has not been observed long enough',
                                     p_stage, v_state.stage),
                    detail = format('Observation window of %s ends at %s UTC.',
                                    (select s.min_observation from chat_v11.stage as s where s.stage = v_state.stage),
                                    coalesce(to_char(v_gates.observed_until at time zone 'UTC',
                                                     'YYYY-MM-DD HH24:MI:SS'), 'an unknown time')),
                    hint = 'Wait for the end of the observation window, then promote again.';
            end if;
            v_action := 'promote';
            v_frozen := false;
        end if;
    end if;

    v_new := chat_v11.apply_transition(
        v_action, v_to_stage, v_to_kill, v_frozen, v_reason, v_note, v_gates.snapshot, null
    );
    if v_note is not null then
        raise notice '%', v_note;
    end if;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    return query
        select v_new.stage, t.traffic_percent, v_new.kill_switch, v_new.promotion_frozen, v_new.reason,
               v_new.changed_by, v_new.actor, v_new.changed_at, v_new.version, v_note
          from chat_v11.stage as t
         where t.stage = v_new.stage;
end
$$;

revoke all on function public.chat_set_v11_rollout_state(text, boolean, text) from public;
grant execute on function public.chat_set_v11_rollout_state(text, boolean, text) to chat_rollout_operator;
comment on function public.chat_set_v11_rollout_state(text, boolean, text) is
'Control the rollout: (stage, true, reason) = kill switch, never refused (a lower stage also rolls back); '
'(same stage, false) = hold (freeze promotion); (lower stage, false) = rollback; (next stage, false) = '
'promote through the Go/No-Go; (stage, false) while killed = resume through the P0 exit criteria. '
'Returns the new state; note says what was not applied.';
