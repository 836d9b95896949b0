-- The playbook's control call: kill, resume, hold, rollback or promote, by its arguments (SPEC 4.6).
-- The kill switch is never refused for red gates or a wrong stage; everything else is guarded. The result names
-- the action taken, and a NOTICE says in words what a rollback or a resume did (no surprise).
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
    action text,
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
    v_seen record;
    v_gates record;
    v_snapshot jsonb;
    v_now timestamptz;
    v_current_ordinal integer;
    v_target_ordinal integer;
    v_action text;
    v_to_stage text;
    v_to_kill boolean;
    v_frozen boolean;
    v_note text;
    v_new record;
    v_exit_failures text[];
    v_clean_at timestamptz;
    v_clean_text text;
    v_incident record;
    v_notice text;
    v_timeout interval;
    v_percent numeric;
    v_approvals record;
begin
    perform chat_v11.begin_write('chat_set_v11_rollout_state');
    if p_kill_switch is null then
        raise exception using
            errcode = 'RO011',
            message = 'p_kill_switch must be true or false',
            detail = 'A null kill switch does not say whether to stop or to resume.',
            hint = 'Pass true to engage the kill switch, false to hold, roll back, promote or resume.';
    end if;

    -- LOCKS: every wait of this call (the policy, the state row, the catalog, the history, the metric store) ends
    -- within one budget of state_lock_timeout; a wait that runs out is RO010 naming the blockers, never a bare 55P03
    if not p_kill_switch then
        -- what the caller saw, for the guard below (a kill means the same whatever it waited for)
        select p.* into v_seen from chat_v11.peek_state() as p;
    end if;
    -- the state row before the block below (each of these two turns its own lock timeout into RO010): a free row is
    -- then locked by the top transaction, which also updates it (chat_v11.lock_state: no MultiXactId)
    v_state := chat_v11.lock_state();
    begin
        v_timeout := pg_catalog.current_setting('chat_rollout.lock_budget')::interval;
        v_now := pg_catalog.clock_timestamp();
        -- GUARD: another call changed the state while this one waited, and this call now means something else
        -- (nested, so a kill plans nothing but what it needs: it stays correct across a migration it waited for)
        if not p_kill_switch then
            if v_state.version <> v_seen.version then
                if chat_v11.call_action(v_seen.stage, v_seen.kill_switch, p_stage, false)
                   <> chat_v11.call_action(v_state.stage, v_state.kill_switch, p_stage, false) then
                    raise exception using
                        errcode = 'RO017',
                        message = format('the rollout changed while this call waited: (%s, false) would now be a %s, '
                                         'not a %s',
                                         coalesce(p_stage, 'null'),
                                         chat_v11.call_action(v_state.stage, v_state.kill_switch, p_stage, false),
                                         chat_v11.call_action(v_seen.stage, v_seen.kill_switch, p_stage, false)),
                        detail = format('Version %s (stage %s, kill switch %s) became version %s '
                                        '(stage %s, kill switch %s, %s by %s).',
                                        v_seen.version, v_seen.stage, v_seen.kill_switch, v_state.version, v_state.stage,
                                        v_state.kill_switch, v_state.reason, v_state.changed_by),
                        hint = 'Read the state again (chat_get_v11_rollout_state()) and repeat the call if it still '
                            || 'makes sense.';
                end if;
            end if;
        end if;
        select s.ordinal into v_current_ordinal from chat_v11.stage as s where s.stage = v_state.stage;
        select s.ordinal into v_target_ordinal from chat_v11.stage as s where s.stage = p_stage;
        -- UNGUARDED (kill, hold, rollback: no gate decides them) the history row carries the most recent evaluation
        -- (chat_v11.gate_evaluation, stored by ingestion after each batch) instead of one made while this call holds
        -- the state row (SPEC 4.3), when it was made for the stage and kill switch this call changes and is at most
        -- a minute old; stamped with its own evaluated_at, who made it and for which version. Every guarded call
        -- (promote, resume; unfreeze is chat_lift_v11_freeze) evaluates fresh. The table is read where its absence
        -- is caught: a call that waited for a downgrade runs the restored functions.
        if p_kill_switch or (not v_state.kill_switch and v_target_ordinal <= v_current_ordinal) then
            begin
                select e.snapshot || pg_catalog.jsonb_build_object(
                           'obtained', 'most recent evaluation',
                           'evaluated_by', e.evaluated_by,
                           'state_version', e.state_version
                       )
                  into v_snapshot
                  from chat_v11.gate_evaluation as e
                 where e.id
                   and e.stage = v_state.stage
                   and e.kill_switch = v_state.kill_switch
                   and e.evaluated_at >= v_now - interval '1 minute'
                   and e.evaluated_at <= v_now;
            exception when undefined_table then
                v_snapshot := null;
            end;
        end if;
        if p_kill_switch and v_snapshot is null then
            -- No recent evaluation: the kill evaluates the gates of the state it stops itself, as
            -- chat_v11.current_gates does but with nothing else of the Go/No-Go: no stage start read from the history
            -- (its cost grows with the history), no incident. The metric store gets at most 50 ms of the lock budget:
            -- when maintenance or DDL holds it, the snapshot is the most recent evaluation in the history, stamped
            -- with its own time. Only functions of every revision from here on: a kill that waited for a downgrade
            -- runs the restored ones.
            begin
                perform pg_catalog.set_config('lock_timeout', least(50, greatest(1, pg_catalog.ceil(
                    (pg_catalog.current_setting('chat_rollout.lock_deadline')::numeric
                     - extract(epoch from pg_catalog.clock_timestamp())) * 1000)))::bigint::text, true);
                select pg_catalog.jsonb_build_object(
                           'evaluated_at', pg_catalog.to_char(v_now at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                           'gate_p0_ok', g.gate_p0_ok,
                           'gate_p1_ok', g.gate_p1_ok,
                           'rollout_decision', g.rollout_decision,
                           'failing_checks', pg_catalog.to_jsonb(g.failing_checks),
                           'obtained', 'evaluated by the kill'
                       )
                  into v_snapshot
                  from chat_v11.evaluate_gates(
                      v_now, v_state.stage, v_state.kill_switch, v_state.promotion_frozen, null, null
                  ) as g;
            exception when lock_not_available then
                select coalesce(h.gate_snapshot, '{}'::jsonb) || pg_catalog.jsonb_build_object(
                           'obtained', 'most recent evaluation in the history',
                           'fallback', format('the metric store was locked at %s UTC: the most recent evaluation '
                                              '(history version %s) stands in', pg_catalog.to_char(
                                                  v_now at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'), h.version)
                       )
                  into v_snapshot
                  from chat_v11.rollout_history as h
                 order by h.version desc
                 limit 1;
            end;
            perform pg_catalog.set_config('lock_timeout', greatest(1, pg_catalog.ceil(
                (pg_catalog.current_setting('chat_rollout.lock_deadline')::numeric
                 - extract(epoch from pg_catalog.clock_timestamp())) * 1000))::bigint::text, true);
        elsif v_snapshot is null then
            select g.* into v_gates from chat_v11.current_gates(v_now) as g;
            v_snapshot := v_gates.snapshot;
        end if;

        if p_kill_switch then
            -- KILL: always accepted; a lower stage also rolls back, anything else is noted, not refused
            v_action := 'kill';
            v_to_kill := true;
            v_frozen := true;
            v_to_stage := v_state.stage;
            if v_target_ordinal is null then
                v_note := format('stage %s is unknown: not applied, the kill switch is on at stage %s',
                                 chat_v11.shown(p_stage), v_state.stage);
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
                    message = format('unknown stage %s', chat_v11.shown(p_stage)),
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
                -- the unresolved P0 incident, if any (its incident commander confirms the exit criteria by resolving it)
                select i.incident_id, i.status, i.opened_at, i.summary into v_incident
                  from chat_v11.incident as i
                 where i.severity = 'P0' and i.status in ('open', 'mitigated')
                 order by i.opened_at, i.incident_id
                 limit 1;
                -- GUARD: the P0 exit criteria now and over the whole exit window; a refusal names the earliest time
                -- the window can be clean, and tells an operator who meant "hold" that nothing more is needed
                if not v_gates.gate_p0_ok then
                    v_exit_failures := array['gate_p0_ok is false. Failing P0 checks: '
                                             || coalesce((select string_agg(f, '; ') from unnest(v_gates.failing_checks) as f),
                                                         'none')];
                else
                    v_exit_failures := chat_v11.p0_exit_failures(v_now);
                end if;
                if pg_catalog.cardinality(v_exit_failures) > 0 then
                    v_clean_at := chat_v11.p0_exit_clean_at(v_now);
                    v_clean_text := case
                        when v_clean_at is null
                            then 'No time can be named yet: a P0 metric has sent no sample in the exit window.'
                        else format('The exit window can be clean at %s UTC at the earliest, if samples keep arriving '
                                    'with no new P0 event.',
                                    pg_catalog.to_char(v_clean_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'))
                    end;
                    raise exception using
                        errcode = 'RO007',
                        message = format('the kill switch is on: (%s, false) asks to resume v1.1 traffic, and the resume '
                                         'is refused: the P0 exit criteria do not hold', p_stage),
                        detail = array_to_string(v_exit_failures, '; ') || '. ' || v_clean_text,
                        hint = format('To hold, do nothing: promotion is already frozen while the kill switch is on. To '
                                      'resume, keep the kill switch on until every P0 check has passed for %s with '
                                      'samples covering it (policy p0_exit_window), %sthen repeat this call; watch '
                                      'chat_get_v11_gate_checks().',
                                      coalesce(chat_v11.policy_interval('p0_exit_window'), interval '30 minutes'),
                                      case when v_incident.incident_id is not null
                                           then format('have P0 incident %s resolved, ', v_incident.incident_id)
                                           else '' end);
                end if;
                -- GUARD: the incident commander confirms the exit criteria by resolving the P0 incident first
                if v_incident.incident_id is not null then
                    raise exception using
                        errcode = 'RO018',
                        message = format('the kill switch is on: (%s, false) asks to resume v1.1 traffic, and the resume '
                                         'is refused: P0 incident %s is not resolved', p_stage, v_incident.incident_id),
                        detail = format('The P0 exit criteria hold, but incident %s (P0, status %s, opened %s UTC: %s) '
                                        'has not been resolved by its incident commander.', v_incident.incident_id,
                                        v_incident.status,
                                        pg_catalog.to_char(v_incident.opened_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                                        chat_v11.shown(v_incident.summary)),
                        hint = format('To hold, do nothing: promotion is already frozen while the kill switch is on. To '
                                      'resume, the incident commander resolves the incident first: select * from '
                                      'chat_set_v11_incident_status(%s, ''resolved'', reason); then repeat this call.',
                                      v_incident.incident_id);
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
                -- GUARD: four eyes (SPEC 9): the next stage's approvals, never the promoter's own
                select a.* into v_approvals from chat_v11.approval_status(v_now, p_stage) as a;
                if v_approvals.blocker is not null then
                    raise exception using
                        errcode = 'RO041',
                        message = format('promotion to %s is refused: approvals are missing', p_stage),
                        detail = format('%s of %s required approvals are valid for promotion to %s%s.%s',
                                        v_approvals.valid, v_approvals.required, p_stage,
                                        case when v_approvals.valid > 0
                                             then format(' (%s)', array_to_string(v_approvals.approvers, ', '))
                                             else '' end,
                                        case when v_approvals.own_approval
                                             then format(' The approval of %s does not count for a promotion by %s.',
                                                         session_user, session_user)
                                             else '' end),
                        hint = format('%s more approval(s) from someone other than %s (the promoter) are needed: '
                                      'select * from chat_approve_v11_promotion(%L, reason); an approval counts until '
                                      'the stage or the kill switch changes, at most for approval_ttl.',
                                      v_approvals.required - v_approvals.valid, session_user, p_stage);
                end if;
                v_action := 'promote';
                v_frozen := false;
            end if;
        end if;

        -- the write's other locks, still within the budget (the state row's own lock is taken above): the target
        -- stage's row, which the state row's foreign key and traffic percent need (a settings change may hold it)
        if v_to_stage is distinct from v_state.stage then
            perform from chat_v11.stage as t where t.stage = v_to_stage for key share;
        end if;
        lock table chat_v11.rollout_history in row exclusive mode;
        -- guarded: a kill that waited for a downgrade below revision 0003 finds no incident table (PL/pgSQL parses
        -- a statement when it first runs it, so the static statement costs no parse when the table is there)
        if pg_catalog.to_regclass('chat_v11.incident') is not null then
            lock table chat_v11.incident in access share mode;
        end if;
    exception when lock_not_available then
        perform chat_v11.raise_state_locked(
            coalesce(v_timeout, pg_catalog.current_setting('chat_rollout.lock_budget', true)::interval)
        );
    end;
    -- the write itself outside the block: the state row's new version belongs to the top transaction, so a
    -- call that waits behind it can name this backend (chat_v11.state_lockers)
    v_new := chat_v11.apply_transition(
        v_action, v_to_stage, v_to_kill, v_frozen, v_reason, v_note, v_snapshot, null
    );
    -- from the catalog, not the state row: a kill that waited for a downgrade below 0005 has no such column
    select t.traffic_percent into v_percent from chat_v11.stage as t where t.stage = v_new.stage;
    -- NO SURPRISE: say in words what moved traffic or the kill switch beyond what the stage argument says
    v_notice := case
        when v_action = 'resume' then format(
            'resume: the kill switch is now OFF and v1.1 traffic flows again at %s (%s %%); promotion stays frozen',
            v_new.stage, v_percent)
        when v_action = 'rollback' then format(
            'rollback: v1.1 traffic goes from %s to %s (%s %%); promotion is frozen', v_state.stage, v_new.stage,
            v_percent)
        when v_action = 'kill' and v_new.stage <> v_state.stage then format(
            'kill: the kill switch is ON and the stage is rolled back from %s to %s', v_state.stage, v_new.stage)
    end;
    if v_notice is not null then
        raise notice '%', v_notice;
    end if;
    if v_note is not null then
        raise notice '%', v_note;
    end if;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    return query
        select v_new.stage, v_percent, v_new.kill_switch, v_new.promotion_frozen, v_new.reason,
               v_new.changed_by, v_new.actor, v_new.changed_at, v_new.version, v_action, v_note;
end
$$;

revoke all on function public.chat_set_v11_rollout_state(text, boolean, text) from public;
grant execute on function public.chat_set_v11_rollout_state(text, boolean, text) to chat_rollout_operator;
comment on function public.chat_set_v11_rollout_state(text, boolean, text) is
'Control the rollout: (stage, true, reason) = kill switch, never refused (a lower stage also rolls back); '
'(same stage, false) = hold (freeze promotion); (lower stage, false) = rollback; (next stage, false) = '
'promote through the Go/No-Go; (stage, false) while killed = resume through the P0 exit criteria. '
'Returns the new state and the action taken; note says what was not applied. A NOTICE says what a rollback or '
'a resume did; a resume also needs every open P0 incident resolved (RO018), a promotion the approvals its stage '
'policy requires, never counting the promoter''s own (RO041).';
