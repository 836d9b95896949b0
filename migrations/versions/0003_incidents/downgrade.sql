-- Downgrade of revision 0003: back to the 0002 functions, without incidents.
-- GUARD: incidents are operator data; dropped only when confirmed with
-- alembic -x drop_data=yes downgrade 0002 (which sets chat_rollout.drop_data for this transaction).
do $guard$
declare
    v_incidents bigint;
begin
    select count(*) into v_incidents from chat_v11.incident;
    if v_incidents > 0 and coalesce(current_setting('chat_rollout.drop_data', true), '') <> 'yes' then
        raise exception using
            errcode = 'RO013',
            message = 'downgrade refused: it would drop operator data',
            detail = format('%s incidents with their timelines and postmortems would be lost.', v_incidents),
            hint = 'Keep a copy first (pg_dump -t chat_v11.incident -t chat_v11.incident_entry), then confirm '
                || 'with: alembic -x drop_data=yes downgrade 0002';
    end if;
end
$guard$;

drop function public.chat_close_v11_incident(bigint, text);
drop function public.chat_get_v11_incident_timeline(bigint);
drop function public.chat_get_v11_incident_checklist(bigint);
drop function public.chat_put_v11_postmortem(bigint, jsonb);
drop function public.chat_snapshot_v11_incident(bigint);
drop function public.chat_set_v11_incident_status(bigint, text, text);
drop function public.chat_set_v11_incident_severity(bigint, text, text);
drop function public.chat_set_v11_incident_role(bigint, text, text);
drop function public.chat_log_v11_incident(bigint, text, text);
drop function public.chat_get_v11_incidents();
drop function public.chat_open_v11_incident(text, text);
drop function chat_v11.set_incident_severity(chat_v11.incident, text, text, jsonb, text);
drop function chat_v11.incident_rollout_effect(text, text, text);
drop function chat_v11.postmortem_problems(jsonb);
drop function chat_v11.incident_for_change(bigint);
drop function chat_v11.get_incident(bigint);
drop function chat_v11.checked_severity(text);
drop function chat_v11.incident_log(bigint, text, text, jsonb);
drop function chat_v11.incident_exit_failures(text, timestamptz);

-- restored from revision 0001: sql/0410_function_evaluate_gates.sql
-- The gate verdict and the Go/No-Go of the playbook (section 9) for a given state at p_at.
create or replace function chat_v11.evaluate_gates(
    p_at timestamptz,
    p_stage text,
    p_kill_switch boolean,
    p_promotion_frozen boolean,
    p_incident_id bigint,
    p_stage_since timestamptz
)
returns table (
    gate_p0_ok boolean,
    gate_p1_ok boolean,
    rollout_decision text,
    promotion_allowed boolean,
    next_stage text,
    observed_until timestamptz,
    failing_checks text[],
    go_no_go_blockers text[],
    blockers text[]
)
language plpgsql
stable
as $$
declare
    v_p0_fail boolean;
    v_p0_ok boolean;
    v_p1_ok boolean;
    v_any_inconclusive boolean;
    v_decision text;
    v_failing text[];
    v_check_lines text[];
    v_next text;
    v_min_observation interval;
    v_until timestamptz;
    v_go text[] := '{}'::text[];
    v_blockers text[] := '{}'::text[];
begin
    select
        coalesce(bool_or(c.severity = 'P0' and c.status = 'fail'), false),
        coalesce(bool_and(c.status = 'pass') filter (where c.severity = 'P0'), false),
        coalesce(bool_and(c.status in ('pass', 'not_applicable')) filter (where c.severity = 'P1'), true),
        coalesce(bool_or(c.status = 'inconclusive'), false),
        coalesce(
            array_agg(c.metric || ': ' || c.status order by c.severity, c.metric)
                filter (where c.status in ('fail', 'inconclusive')),
            '{}'
        ),
        coalesce(
            array_agg(format('%s %s is %s: %s', c.severity, c.metric, c.status, c.explanation)
                      order by c.severity, c.metric)
                filter (where c.status in ('fail', 'inconclusive')),
            '{}'
        )
      into v_p0_fail, v_p0_ok, v_p1_ok, v_any_inconclusive, v_failing, v_check_lines
      from chat_v11.evaluate_checks(p_at, p_stage, p_kill_switch) as c;

    v_decision := case
        when v_p0_fail then 'ROLLBACK'
        when v_any_inconclusive or not v_p1_ok then 'HOLD'
        else 'PROCEED'
    end;

    select s.stage into v_next
      from chat_v11.stage as s
     where s.ordinal > (select c.ordinal from chat_v11.stage as c where c.stage = p_stage)
     order by s.ordinal
     limit 1;
    select s.min_observation into v_min_observation from chat_v11.stage as s where s.stage = p_stage;
    v_until := p_stage_since + v_min_observation;

    -- GUARD: the Go/No-Go of playbook section 9 (gates green, nothing open)
    if not v_p0_ok then
        v_go := v_go || 'gate_p0_ok is false'::text;
    end if;
    if not v_p1_ok then
        v_go := v_go || 'gate_p1_ok is false'::text;
    end if;
    if v_decision <> 'PROCEED' then
        v_go := v_go || format('rollout_decision is %s, not PROCEED', v_decision);
    end if;
    v_go := v_go || v_check_lines;
    if p_incident_id is not null then
        v_go := v_go || format('incident %s is open', p_incident_id);
    end if;

    -- Everything else that stops a promotion now
    if p_kill_switch then
        v_blockers := v_blockers || 'the kill switch is on: only a controlled resume can lift it'::text;
    end if;
    if p_promotion_frozen then
        v_blockers := v_blockers
            || 'promotion is frozen: lift it with chat_lift_v11_freeze() once the gates are green'::text;
    end if;
    if v_next is null then
        v_blockers := v_blockers || format('stage %s is the last stage: there is nothing to promote to', p_stage);
    end if;
    v_blockers := v_blockers || v_go;
    if v_until is null or v_until > p_at then
        v_blockers := v_blockers || format(
            'stage %s must be observed for %s: %s',
            p_stage, v_min_observation,
            case
                when v_until is null then 'the stage start is unknown'
                else format('observed since %s UTC, until %s UTC',
                            pg_catalog.to_char(p_stage_since at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                            pg_catalog.to_char(v_until at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'))
            end
        );
    end if;

    return query select
        v_p0_ok, v_p1_ok, v_decision, pg_catalog.cardinality(v_blockers) = 0,
        v_next, v_until, v_failing, v_go, v_blockers;
end
$$;

revoke all on function chat_v11.evaluate_gates(timestamptz, text, boolean, boolean, bigint, timestamptz) from public;
comment on function chat_v11.evaluate_gates(timestamptz, text, boolean, boolean, bigint, timestamptz) is
'Gate verdict (gate_p0_ok, gate_p1_ok, rollout_decision) and the Go/No-Go blockers for a state at p_at.';

-- restored from revision 0001: sql/0520_function_apply_transition.sql
-- Writes one accepted state change: the state row, its history row, a durable commit and a NOTIFY.
-- The caller holds the state lock (chat_v11.lock_state) and has checked every guard.
create or replace function chat_v11.apply_transition(
    p_action text,
    p_to_stage text,
    p_to_kill_switch boolean,
    p_promotion_frozen boolean,
    p_reason text,
    p_note text,
    p_gate_snapshot jsonb,
    p_actor text
)
returns chat_v11.rollout_state
language plpgsql
volatile
as $$
declare
    v_old chat_v11.rollout_state;
    v_new chat_v11.rollout_state;
    v_now timestamptz := pg_catalog.clock_timestamp();
begin
    -- durable even where the database default is off; lasts until this transaction ends
    perform pg_catalog.set_config('synchronous_commit', 'on', true);

    select s.* into strict v_old from chat_v11.rollout_state as s;
    update chat_v11.rollout_state as s
       set stage = p_to_stage,
           kill_switch = p_to_kill_switch,
           promotion_frozen = p_promotion_frozen,
           reason = p_reason,
           changed_by = session_user,
           actor = coalesce(p_actor, chat_v11.claimed_actor()),
           changed_at = v_now,
           version = s.version + 1
    returning s.* into strict v_new;

    insert into chat_v11.rollout_history (
        version, changed_at, changed_by, actor, action,
        from_stage, to_stage, from_kill_switch, to_kill_switch, promotion_frozen,
        reason, note, gate_snapshot, incident_id
    ) values (
        v_new.version, v_now, v_new.changed_by, v_new.actor, p_action,
        v_old.stage, v_new.stage, v_old.kill_switch, v_new.kill_switch, v_new.promotion_frozen,
        p_reason, p_note, p_gate_snapshot, null
    );

    perform pg_catalog.pg_notify('chat_v11_rollout', pg_catalog.json_build_object(
        'version', v_new.version,
        'action', p_action,
        'stage', v_new.stage,
        'traffic_percent', (select t.traffic_percent from chat_v11.stage as t where t.stage = v_new.stage),
        'kill_switch', v_new.kill_switch,
        'promotion_frozen', v_new.promotion_frozen,
        'changed_at', pg_catalog.to_char(v_now at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
        'changed_by', v_new.changed_by,
        'actor', v_new.actor
    )::text);
    return v_new;
end
$$;

revoke all on function chat_v11.apply_transition(text, text, boolean, boolean, text, text, jsonb, text) from public;
comment on function chat_v11.apply_transition(text, text, boolean, boolean, text, text, jsonb, text) is
'Writes an accepted state change (state row + history row + NOTIFY chat_v11_rollout), committed durably.';

-- restored from revision 0001: sql/0530_function_gate_snapshot.sql
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
          p_at, s.stage, s.kill_switch, s.promotion_frozen, h.incident_id, h.stage_since
      ) as g
$$;

revoke all on function chat_v11.current_gates(timestamptz) from public;
comment on function chat_v11.current_gates(timestamptz) is
'Gate verdict and Go/No-Go of the current state at p_at, with the jsonb snapshot kept in the history.';

-- restored from revision 0001: sql/0630_function_chat_get_v11_release_gates.sql
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
           h.incident_id, g.next_stage, coalesce(p_at, pg_catalog.now()), g.failing_checks, g.blockers
      from (select 1) as one
      left join chat_v11.state_at(coalesce(p_at, pg_catalog.now())) as h on true
     cross join lateral chat_v11.evaluate_gates(
         coalesce(p_at, pg_catalog.now()), coalesce(h.stage, 'off'), coalesce(h.kill_switch, false),
         coalesce(h.promotion_frozen, false), h.incident_id, h.stage_since
     ) as g
$$;

revoke all on function public.chat_get_v11_release_gates(timestamptz) from public;
grant execute on function public.chat_get_v11_release_gates(timestamptz) to chat_rollout_reader;
comment on function public.chat_get_v11_release_gates(timestamptz) is
'Source of truth: the release gates as of p_at (default now). gate_p0_ok, gate_p1_ok, rollout_decision '
'(PROCEED | HOLD | ROLLBACK), promotion_allowed (the Go/No-Go) and blockers in words. Missing data never '
'passes. Read-only.';

-- restored from revision 0002: sql/0540_function_auto_kill.sql
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

drop function chat_v11.open_incident_at(timestamptz);
drop table chat_v11.incident_entry;
drop table chat_v11.incident;
