-- >>> sql/0220_function_chain_history_row.sql
-- Trigger function: links a new history row to the chain (prev_hash, hash) and keeps versions contiguous.
create or replace function chat_v11.chain_history_row()
returns trigger
language plpgsql
set search_path = pg_catalog, chat_v11, pg_temp
-- the previous row by the primary key, always: the plan is cached for the session, and one made while the table
-- was nearly empty (a new install, a fresh clone) was a sequential scan + sort that grew with every row (0014)
set enable_seqscan = off
as $$
declare
    v_last_version bigint;
    v_last_hash text;
begin
    select h.version, h.hash
      into v_last_version, v_last_hash
      from chat_v11.rollout_history as h
     order by h.version desc
     limit 1;
    if new.version is distinct from coalesce(v_last_version, 0) + 1 then
        raise exception using
            errcode = 'RO012',
            message = format('history version %s does not follow version %s', new.version, v_last_version),
            detail = 'History versions are contiguous: each row follows the previous one by exactly 1.',
            hint = 'Change the state through public.chat_set_v11_rollout_state(); never insert history directly.';
    end if;
    new.prev_hash := coalesce(v_last_hash, repeat('0', 64));
    new.hash := chat_v11.history_row_hash(new);
    return new;
end
$$;

revoke all on function chat_v11.chain_history_row() from public;
comment on function chat_v11.chain_history_row() is
'Trigger: sets prev_hash and hash of a new rollout history row; refuses a gap in versions (RO012).';

-- >>> sql/0222_function_chain_approval_row.sql
-- Trigger function: links a new approval row to the chain (prev_hash, hash) and keeps ids contiguous. Writers
-- serialize on the table (chat_approve_v11_promotion locks it), so two approvals never share a predecessor.
create or replace function chat_v11.chain_approval_row()
returns trigger
language plpgsql
set search_path = pg_catalog, chat_v11, pg_temp
-- the previous row by the primary key, always: the plan is cached for the session, and one made while the table
-- was nearly empty (a new install, a fresh clone) was a sequential scan + sort that grew with every row (0014)
set enable_seqscan = off
as $$
declare
    v_last_id bigint;
    v_last_hash text;
begin
    select a.approval_id, a.hash
      into v_last_id, v_last_hash
      from chat_v11.promotion_approval as a
     order by a.approval_id desc
     limit 1;
    if new.approval_id is distinct from coalesce(v_last_id, 0) + 1 then
        raise exception using
            errcode = 'RO012',
            message = format('approval %s does not follow approval %s', new.approval_id, v_last_id),
            detail = 'Approval ids are contiguous: each row follows the previous one by exactly 1.',
            hint = 'Approve through public.chat_approve_v11_promotion(); never insert approvals directly.';
    end if;
    new.prev_hash := coalesce(v_last_hash, pg_catalog.repeat('0', 64));
    new.hash := chat_v11.approval_row_hash(new);
    return new;
end
$$;

revoke all on function chat_v11.chain_approval_row() from public;
comment on function chat_v11.chain_approval_row() is
'Trigger: sets prev_hash and hash of a new promotion approval row; refuses a gap in ids (RO012).';

-- >>> sql/0500_function_state_lockers.sql
-- Describes the backends that hold, or queue ahead of us for, a lock a state call needs: the state row, or any
-- table, partition or index of the project (DDL, maintenance). Names pid, role, application and lock; never the
-- query text (pg_stat_activity hides another role's query from the operator, and so does this).
create or replace function chat_v11.state_lockers()
returns text
language plpgsql
volatile
as $$
declare
    v_xmax xid;
    v_stage_xmax xid[];
    v_lockers text;
begin
    -- the row's locker, if the table itself can be read (an ACCESS EXCLUSIVE holder forbids even that), and the
    -- lockers of the stage rows (a settings change holds one; a rollback or promotion needs it FOR KEY SHARE)
    -- (NOWAIT: the call already spent its budget; a locked table is described from pg_locks below)
    begin
        lock table chat_v11.rollout_state in access share mode nowait;
        select s.xmax into v_xmax from chat_v11.rollout_state as s;
    exception when lock_not_available then
        v_xmax := null;
    end;
    begin
        lock table chat_v11.stage in access share mode nowait;
        select pg_catalog.array_agg(t.xmax) into v_stage_xmax
          from chat_v11.stage as t
         where t.xmax::text <> '0';
    exception when lock_not_available then
        v_stage_xmax := null;
    end;

    with project as (
        -- every relation of the project; the ones a state call writes conflict with more modes
        select c.oid, 'chat_v11.' || c.relname as name,
               c.oid in ('chat_v11.rollout_state'::regclass, 'chat_v11.rollout_history'::regclass) as written
          from pg_catalog.pg_class as c
         where c.relnamespace = 'chat_v11'::regnamespace
    ),
    lockers as (
        select l.pid, l.granted, l.mode, 'the state row' as what, null::oid as relid
          from pg_catalog.pg_locks as l
         where l.locktype = 'transactionid'
           and l.mode = 'ExclusiveLock'
           and l.granted
           and l.transactionid in (select h.x from chat_v11.xmax_holders(v_xmax) as h (x))
           and l.pid <> pg_catalog.pg_backend_pid()
        union
        -- the state calls' queue (chat_v11.lock_state: advisory lock (1667785076, 11)): its holder has the row or
        -- is about to take it
        select l.pid, l.granted, l.mode, 'the state row' as what, null::oid as relid
          from pg_catalog.pg_locks as l
         where l.locktype = 'advisory'
           and l.database = (select d.oid from pg_catalog.pg_database as d where d.datname = current_database())
           and l.classid = 1667785076::oid
           and l.objid = 11::oid
           and l.objsubid = 2
           and l.mode = 'ExclusiveLock'
           and l.granted
           and l.pid <> pg_catalog.pg_backend_pid()
        union
        select l.pid, l.granted, l.mode, 'a row of chat_v11.stage' as what, null::oid as relid
          from pg_catalog.pg_locks as l
         where l.locktype = 'transactionid'
           and l.mode = 'ExclusiveLock'
           and l.granted
           and l.transactionid in (select h.x from unnest(v_stage_xmax) as x (x)
                                   cross join lateral chat_v11.xmax_holders(x.x) as h (x))
           and l.pid <> pg_catalog.pg_backend_pid()
        union
        select l.pid, l.granted, l.mode, p.name, l.relation
          from pg_catalog.pg_locks as l
          join project as p on p.oid = l.relation
         where l.locktype = 'relation'
           and l.database = (select d.oid from pg_catalog.pg_database as d where d.datname = current_database())
           and l.pid <> pg_catalog.pg_backend_pid()
           and (l.mode in ('ExclusiveLock', 'AccessExclusiveLock')
                or (p.written and l.mode in ('ShareLock', 'ShareRowExclusiveLock')))
    ),
    queue as (
        -- what a queued locker waits behind (a long reader ahead of a DDL): the real cause
        select b.pid, true as granted,
               coalesce((select pg_catalog.string_agg(distinct h.mode, '+')
                           from pg_catalog.pg_locks as h
                          where h.pid = b.pid and h.granted and h.locktype = 'relation'
                            and h.relation = k.relid), 'a lock') as mode,
               k.what || ' ahead of pid ' || k.pid as what, k.relid
          from lockers as k
         cross join lateral unnest(pg_catalog.pg_blocking_pids(k.pid)) as b (pid)
         where not k.granted and b.pid <> pg_catalog.pg_backend_pid()
    ),
    everyone as (
        select * from lockers
        union
        select * from queue
    )
    select pg_catalog.string_agg(
        format(
            'pid %s (%s %s, role %s, application %s%s)',
            k.pid,
            case when k.granted then 'holds' else 'waits for' end,
            case when k.relid is null and k.mode = 'ExclusiveLock' then k.what else k.mode || ' on ' || k.what end,
            coalesce(a.usename::text, '?'),
            coalesce(nullif(a.application_name, ''), '?'),
            -- its state only to a caller who may see it in pg_stat_activity (same role, pg_read_all_stats)
            case when a.usesysid is not null
                      and (pg_catalog.pg_has_role(session_user, a.usesysid, 'MEMBER')
                           or pg_catalog.pg_has_role(session_user, 'pg_read_all_stats', 'MEMBER'))
                 then format(', %s since %s UTC', coalesce(a.state, '?'),
                             coalesce(pg_catalog.to_char(coalesce(a.xact_start, a.state_change) at time zone 'UTC',
                                                         'YYYY-MM-DD HH24:MI:SS'), '?'))
                 else '' end
        ),
        '; ' order by k.pid, k.what
    )
      into v_lockers
      from everyone as k
      left join pg_catalog.pg_stat_activity as a on a.pid = k.pid;
    return v_lockers;
end
$$;

revoke all on function chat_v11.state_lockers() from public;
comment on function chat_v11.state_lockers() is
'The backends holding or queuing for a lock a state call needs (the state row, any project table, partition or '
'index): pid, role, application and lock, never the query text.';

-- >>> sql/0510_function_lock_state.sql
-- Starts (or keeps) the statement's lock budget (state_lock_timeout), then locks the state row within it.
-- On timeout raises RO010 naming the blocking backends: a state call never hangs. lock_timeout stays bounded
-- by the budget's deadline for the rest of the caller's statement.
-- Call it first: a caller that declares a chat_v11.rollout_state variable already waited for the
-- table's rowtype (an AccessShareLock taken at block entry) with no bound. The caller restores lock_timeout.
--
-- The row is locked at the CALLER'S LEVEL, not in a subtransaction (revision 0014). A row locked by a subtransaction
-- (the exception block that turns a timeout into RO010) and then updated by its top transaction gets a MultiXactId
-- as xmax at every state change; the old row versions then outlived page pruning, the one-row table grew by a page
-- every few dozen changes under contention and every read of it slowed down (tools/bench, docs/performance.md).
-- So the waiting happens on something else, in a subtransaction (a timeout there is RO010), and the row itself is
-- then taken with SKIP LOCKED, which never waits, at the caller's level:
-- - the state calls' queue: the transaction-level advisory lock (1667785076, 11) ('chat' as an integer, v1.1);
--   every state call takes it here before the row, in order, and keeps it until its transaction ends (a lock
--   taken in a subtransaction that commits stays with the transaction);
-- - the table's own lock, tried without a wait (NOWAIT): DDL or maintenance that holds it makes the call wait in
--   the subtransaction below instead, within the same budget.
-- A row held outside the queue (a session's own SELECT ... FOR UPDATE, a migration) is waited for as before, in a
-- subtransaction (then the xmax is a MultiXactId again). chat_v11.state_lockers names the queue's holder.
create or replace function chat_v11.lock_state()
returns chat_v11.rollout_state
language plpgsql
volatile
as $$
declare
    v_state record;
    v_timeout interval;
    v_table_free boolean;
begin
    perform chat_v11.begin_write('a rollout state change');
    v_timeout := chat_v11.start_lock_budget();
    if not pg_catalog.pg_try_advisory_xact_lock(1667785076, 11) then
        begin
            perform pg_catalog.pg_advisory_xact_lock(1667785076, 11);
        exception when lock_not_available then
            perform chat_v11.raise_state_locked(v_timeout);
        end;
    end if;
    begin
        lock table chat_v11.rollout_state in row share mode nowait;
        v_table_free := true;
    exception when lock_not_available then
        v_table_free := false;
    end;
    if v_table_free then
        select s.* into v_state from chat_v11.rollout_state as s for update skip locked;
        if found then
            return v_state;
        end if;
    end if;
    begin
        select s.* into strict v_state from chat_v11.rollout_state as s for update;
    exception when lock_not_available then
        perform chat_v11.raise_state_locked(v_timeout);
    end;
    return v_state;
end
$$;

revoke all on function chat_v11.lock_state() from public;
comment on function chat_v11.lock_state() is
'Locks the rollout state row within the statement''s lock budget (state_lock_timeout), or raises RO010 naming '
'the blocker: state calls queue on the advisory lock (1667785076, 11), then take the row at the caller''s level.';

-- >>> sql/0640_function_chat_set_v11_rollout_state.sql
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
