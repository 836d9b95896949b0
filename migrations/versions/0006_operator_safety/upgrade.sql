-- >>> migrations/steps/0006_a_set_state_action.sql
-- Revision 0006: chat_set_v11_rollout_state returns an action column (SPEC 4.6, no surprise); a function's result
-- type cannot change in place, so the old form goes first and sql/0640 creates the new one with its grants.
-- squawk-ignore ban-drop-function -- re-created by sql/0640 in this same transaction, with the same grants
drop function public.chat_set_v11_rollout_state(text, boolean, text);

-- >>> sql/0190_table_maintenance.sql
-- The maintenance lock: one row per maintenance job. public.chat_run_v11_maintenance() takes its row FOR UPDATE SKIP
-- LOCKED; the table grants nothing to anyone, so only the project's own functions (and the owner) can hold it. An
-- advisory lock would be open to any login of the database (issue 12).
create table chat_v11.maintenance (
    job text not null,
    description text not null,
    constraint maintenance_pkey primary key (job),
    constraint maintenance_job_known check (job in ('metric_sample'))
);

comment on table chat_v11.maintenance is
'Row locks of the maintenance jobs (public.chat_run_v11_maintenance()); never written after install.';

insert into chat_v11.maintenance (job, description) values
(
    'metric_sample',
    'Daily partitions of chat_v11.metric_sample created ahead and dropped past the retention policy.'
);

-- >>> sql/0497_function_start_lock_budget.sql
-- Starts the lock budget of the current statement: its lock waits end, all together, state_lock_timeout after
-- the first call (a second call in the same statement keeps the first deadline). The policy is read only when its
-- lock comes without a wait: DDL on the policy table never holds a kill up (the default of 2 seconds applies).
create or replace function chat_v11.start_lock_budget()
returns interval
language plpgsql
volatile
as $$
declare
    v_statement text := extract(epoch from pg_catalog.statement_timestamp())::text;
    v_started numeric := extract(epoch from pg_catalog.clock_timestamp());
    v_timeout interval;
begin
    if pg_catalog.current_setting('chat_rollout.lock_statement', true) is not distinct from v_statement then
        v_timeout := pg_catalog.current_setting('chat_rollout.lock_budget')::interval;
    else
        begin
            lock table chat_v11.policy in access share mode nowait;
            v_timeout := chat_v11.policy_interval('state_lock_timeout');
        exception when lock_not_available then
            v_timeout := null;  -- DDL holds or queues for the policy table: the default bound, and no wait at all
        end;
        v_timeout := coalesce(v_timeout, interval '2 seconds');
        perform pg_catalog.set_config('chat_rollout.lock_statement', v_statement, true);
        perform pg_catalog.set_config('chat_rollout.lock_budget', v_timeout::text, true);
        perform pg_catalog.set_config(
            'chat_rollout.lock_deadline', (v_started + extract(epoch from v_timeout))::text, true
        );
    end if;
    perform chat_v11.bound_lock_wait(null);
    return v_timeout;
end
$$;

revoke all on function chat_v11.start_lock_budget() from public;
comment on function chat_v11.start_lock_budget() is
'Starts (once per statement) the lock budget of a state call: every lock wait ends by state_lock_timeout after '
'the start. The policy is read only when its lock comes without a wait, so DDL on it never holds a kill up.';

-- >>> sql/0498_function_bound_lock_wait.sql
-- Sets lock_timeout to the time left in the statement's lock budget (chat_v11.start_lock_budget), at most p_cap:
-- a wait past the deadline fails at once (lock_not_available), which the callers turn into RO010.
create or replace function chat_v11.bound_lock_wait(p_cap interval)
returns void
language plpgsql
volatile
as $$
declare
    v_deadline numeric := pg_catalog.current_setting('chat_rollout.lock_deadline', true)::numeric;
    v_left_ms numeric;
begin
    if v_deadline is null then
        perform chat_v11.start_lock_budget();
        v_deadline := pg_catalog.current_setting('chat_rollout.lock_deadline')::numeric;
    end if;
    v_left_ms := pg_catalog.ceil((v_deadline - extract(epoch from pg_catalog.clock_timestamp())) * 1000);
    if p_cap is not null then
        v_left_ms := least(v_left_ms, pg_catalog.ceil(extract(epoch from p_cap) * 1000));
    end if;
    perform pg_catalog.set_config('lock_timeout', greatest(v_left_ms, 1)::bigint::text, true);
end
$$;

revoke all on function chat_v11.bound_lock_wait(interval) from public;
comment on function chat_v11.bound_lock_wait(interval) is
'Bounds the next lock waits by the time left in this statement''s lock budget (at most p_cap).';

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

-- >>> sql/0505_function_raise_state_locked.sql
-- Raises RO010 for a state call that waited its lock budget (state_lock_timeout) in vain, naming the blockers.
create or replace function chat_v11.raise_state_locked(p_timeout interval)
returns void
language plpgsql
volatile
as $$
declare
    v_lockers text := chat_v11.state_lockers();
begin
    raise exception using
        errcode = 'RO010',
        message = format('the rollout state is locked by another session: gave up after %s', p_timeout),
        detail = format('Blocked by %s.', coalesce(v_lockers, 'a backend that released the lock meanwhile')),
        hint = 'Retry the call. A queued DDL that waits: cancel it with SELECT pg_cancel_backend(<pid>). '
            || 'A stuck session (idle in transaction): end it with SELECT pg_terminate_backend(<pid>). '
            || 'pg_stat_activity shows what each pid runs to whoever may see it.';
end
$$;

revoke all on function chat_v11.raise_state_locked(interval) from public;
comment on function chat_v11.raise_state_locked(interval) is
'Raises RO010 (the rollout state is locked by another session) naming the blocking backends and their locks.';

-- >>> sql/0508_function_peek_state.sql
-- The state as a call sees it before it waits for the state row (stage, kill switch, version), read within the
-- statement's lock budget (state_lock_timeout): behind an ACCESS EXCLUSIVE holder it fails with RO010, never hangs.
create or replace function chat_v11.peek_state()
returns table (stage text, kill_switch boolean, version bigint)
language plpgsql
volatile
as $$
#variable_conflict use_column
declare
    v_timeout interval;
begin
    v_timeout := chat_v11.start_lock_budget();
    begin
        return query select s.stage, s.kill_switch, s.version from chat_v11.rollout_state as s;
    exception when lock_not_available then
        perform chat_v11.raise_state_locked(v_timeout);
    end;
end
$$;

revoke all on function chat_v11.peek_state() from public;
comment on function chat_v11.peek_state() is
'Stage, kill switch and version before a state call waits for the row, read within state_lock_timeout (RO010).';

-- >>> sql/0510_function_lock_state.sql
-- Starts (or keeps) the statement's lock budget (state_lock_timeout), then locks the state row within it.
-- On timeout raises RO010 naming the blocking backends: a state call never hangs. lock_timeout stays bounded
-- by the budget's deadline for the rest of the caller's statement.
-- Call it first: a caller that declares a chat_v11.rollout_state variable already waited for the
-- table's rowtype (an AccessShareLock taken at block entry) with no bound. The caller restores lock_timeout.
create or replace function chat_v11.lock_state()
returns chat_v11.rollout_state
language plpgsql
volatile
as $$
declare
    v_state record;
    v_timeout interval;
begin
    perform chat_v11.begin_write('a rollout state change');
    v_timeout := chat_v11.start_lock_budget();
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
'the blocker.';

-- >>> sql/0540_function_auto_kill.sql
-- The P0 guardrail. When a P0 check fails at p_at: the incident not closed yet (reopened if it was resolved: a
-- relapse) escalates to P0 (playbook section 7) with the evidence; with the auto_kill policy on and the kill switch
-- off, the kill switch is engaged (action auto_kill, actor guardrail) under a P0 incident, opened if none is
-- active. All in the caller's transaction. Returns the new state version, or null when the rollout was not changed.
create or replace function chat_v11.auto_kill(p_at timestamptz, p_source text)
returns bigint
language plpgsql
volatile
as $$
declare
    v_state record;
    v_failing text[];
    v_evidence jsonb;
    v_incident record;  -- not chat_v11.incident: a rowtype variable would wait for the table unbounded
    v_reopened boolean;
    v_auto boolean;
    v_gates record;
    v_reason text;
    v_new record;
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
begin
    select array_agg(format('%s = %s (%s)', c.metric, coalesce(c.value::text, 'n/a'), c.explanation)
                     order by c.metric),
           jsonb_agg(jsonb_build_object('metric', c.metric, 'value', c.value, 'volume', c.volume,
                                        'explanation', c.explanation) order by c.metric)
      into v_failing, v_evidence
      from chat_v11.evaluate_checks(p_at, 'off', false) as c
     where c.severity = 'P0' and c.status = 'fail';
    if v_failing is null then
        return null;
    end if;
    v_reason := pg_catalog.left(format('auto_kill by the P0 guardrail (%s, evidence at %s UTC): %s',
                                       p_source, pg_catalog.to_char(p_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                                       array_to_string(v_failing, '; ')), 500);
    -- LOCKS: one budget of state_lock_timeout for every wait; running out is RO010 naming the blockers. The writes
    -- come after the block, in the top transaction (a call waiting behind the state row can then name us).
    begin
        -- the state lock first: racing writers and guardrail runs decide one after the other (one incident)
        v_state := chat_v11.lock_state();
        v_auto := coalesce(
            (select (p.value #>> '{}')::boolean from chat_v11.policy as p where p.key = 'auto_kill'), true
        );
        -- one incident at a time: the one not closed yet (a resolved one included), active first
        select i.* into v_incident
          from chat_v11.incident as i
         where i.status <> 'closed'
         order by i.status = 'resolved', i.severity, i.opened_at, i.incident_id
         limit 1
           for update;
        lock table chat_v11.incident, chat_v11.incident_entry in row exclusive mode;
        lock table chat_v11.rollout_history in row exclusive mode;
        if v_auto and not v_state.kill_switch then
            select g.* into v_gates from chat_v11.current_gates(p_at) as g;
        end if;
    exception when lock_not_available then
        perform chat_v11.raise_state_locked(pg_catalog.current_setting('chat_rollout.lock_budget', true)::interval);
    end;

    -- INCIDENT: a relapse reopens a resolved incident; escalate it to P0, or declare one for the automatic kill
    v_reopened := v_incident.incident_id is not null and v_incident.status = 'resolved';
    if v_reopened then
        update chat_v11.incident as i set status = 'open', resolved_at = null
         where i.incident_id = v_incident.incident_id;
        perform chat_v11.incident_log(
            v_incident.incident_id, 'status',
            pg_catalog.left(format('status resolved -> open by the guardrail: a P0 relapse: %s',
                                   array_to_string(v_failing, '; ')), 2000),
            jsonb_build_object('from', 'resolved', 'to', 'open', 'evidence', v_evidence, 'at', p_at)
        );
    end if;
    if v_incident.incident_id is not null and v_incident.severity <> 'P0' then
        update chat_v11.incident as i set severity = 'P0' where i.incident_id = v_incident.incident_id;
        perform chat_v11.incident_log(
            v_incident.incident_id, 'escalation',
            pg_catalog.left(format('severity %s -> P0 by the guardrail (playbook section 7): %s', v_incident.severity,
                                   array_to_string(v_failing, '; ')), 2000),
            jsonb_build_object('from', v_incident.severity, 'to', 'P0', 'evidence', v_evidence, 'at', p_at)
        );
    elsif v_incident.incident_id is null and v_auto and not v_state.kill_switch then
        insert into chat_v11.incident (severity, summary, opened_actor)
        values ('P0', pg_catalog.left('automatic kill: ' || array_to_string(v_failing, '; '), 500), 'guardrail')
        returning * into v_incident;
        perform chat_v11.incident_log(v_incident.incident_id, 'opened',
                                      'P0 incident declared by the guardrail: ' || v_reason,
                                      jsonb_build_object('evidence', v_evidence, 'at', p_at));
    end if;

    -- ROLLOUT: the automatic kill (not when an operator got there first)
    if not v_auto or v_state.kill_switch then
        perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
        return null;
    end if;
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
'P0 guardrail: on a failing P0 check, escalates the active incident to P0 and, with auto_kill on, engages the '
'kill switch (auto_kill, actor guardrail) under a P0 incident; returns the new state version or null.';

-- >>> sql/0552_function_p0_exit_clean_at.sql
-- When the P0 exit window can be clean at the earliest if samples keep arriving with no new P0 event: the last
-- P0 event (a bucket over its rule) leaves the window, and every P0 metric's samples cover it. Null when a P0
-- metric has sent no sample in the window (no time can be promised).
create or replace function chat_v11.p0_exit_clean_at(p_at timestamptz)
returns timestamptz
language sql
stable
as $$
    with exit_window as (
        select coalesce(chat_v11.policy_interval('p0_exit_window'), interval '30 minutes') as w
    ),
    per_metric as (
        select m.metric,
               m.freshness,
               pg_catalog.max(s.bucket_start) filter (
                   where case when m.rule = 'threshold' then s.numerator > m.threshold * s.denominator
                              else s.numerator > 0 end
               ) as last_event,
               pg_catalog.min(s.bucket_start) as oldest
          from chat_v11.metric as m
         cross join exit_window as x
          left join chat_v11.metric_sample as s
                 on s.metric = m.metric and s.bucket_start > p_at - x.w and s.bucket_start <= p_at
         where m.severity = 'P0'
         group by m.metric, m.freshness
    )
    select case
               when pg_catalog.bool_or(p.oldest is null) then null
               else greatest(p_at, pg_catalog.max(p.last_event + x.w), pg_catalog.max(p.oldest + x.w - p.freshness))
           end
      from per_metric as p
     cross join exit_window as x
     group by x.w
$$;

revoke all on function chat_v11.p0_exit_clean_at(timestamptz) from public;
comment on function chat_v11.p0_exit_clean_at(timestamptz) is
'The earliest time the P0 exit window can be clean if samples keep arriving with no new P0 event (the last event '
'has left the window and the samples cover it); null when a P0 metric has no sample in the window.';

-- >>> sql/0570_function_ensure_sample_partitions.sql
-- Creates the missing daily partitions of chat_v11.metric_sample for the UTC days p_from .. p_to (at most 400 days),
-- named metric_sample_pYYYYMMDD, each covering [day 00:00 UTC, next day 00:00 UTC). Samples of such a day that
-- waited in the default partition move into the new partition first. A partition is created as a plain table and
-- then attached: ATTACH takes SHARE UPDATE EXCLUSIVE on the parent (ingestion and gate reads go on) and ACCESS
-- EXCLUSIVE only on the new table and on the default partition (kept small). Returns how many were created.
create or replace function chat_v11.ensure_sample_partitions(p_from date, p_to date)
returns integer
language plpgsql
volatile
as $$
declare
    v_day date;
    v_name text;
    v_lo text;
    v_hi text;
    v_created integer := 0;
begin
    if p_from is null or p_to is null or p_to < p_from or p_to - p_from > 400 then
        raise exception using
            errcode = 'RO011',
            message = 'partition days must be a range of 1 to 401 days',
            detail = pg_catalog.format('From %s to %s.', coalesce(p_from::text, 'null'), coalesce(p_to::text, 'null')),
            hint = 'Pass the first and the last UTC day, for example current_date - 1 and current_date + 7.';
    end if;
    v_day := p_from;
    while v_day <= p_to loop
        v_name := 'metric_sample_p' || pg_catalog.to_char(v_day, 'YYYYMMDD');
        if pg_catalog.to_regclass('chat_v11.' || v_name) is null then
            v_lo := pg_catalog.to_char(v_day, 'YYYY-MM-DD') || ' 00:00:00+00';
            v_hi := pg_catalog.to_char(v_day + 1, 'YYYY-MM-DD') || ' 00:00:00+00';
            execute pg_catalog.format(
                'create table chat_v11.%I (like chat_v11.metric_sample including defaults including constraints)',
                v_name
            );
            execute pg_catalog.format(
                'with moved as (delete from chat_v11.metric_sample_default as d '
                || 'where d.bucket_start >= %L::timestamptz and d.bucket_start < %L::timestamptz returning d.*) '
                || 'insert into chat_v11.%I select * from moved',
                v_lo, v_hi, v_name
            );
            execute pg_catalog.format(
                'alter table chat_v11.metric_sample attach partition chat_v11.%I for values from (%L) to (%L)',
                v_name, v_lo, v_hi
            );
            execute pg_catalog.format(
                'comment on table chat_v11.%I is %L',
                v_name, 'Metric samples of the UTC day ' || pg_catalog.to_char(v_day, 'YYYY-MM-DD')
                || ' (a partition of chat_v11.metric_sample, dropped whole by the retention policy).'
            );
            v_created := v_created + 1;
        end if;
        v_day := v_day + 1;
    end loop;
    return v_created;
end
$$;

revoke all on function chat_v11.ensure_sample_partitions(date, date) from public;
comment on function chat_v11.ensure_sample_partitions(date, date) is
'Creates the missing daily partitions of chat_v11.metric_sample for the UTC days p_from .. p_to, moving samples of '
'those days out of the default partition. Returns the number created. Run by public.chat_run_v11_maintenance() '
'and the migration.';

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
    begin
        if not p_kill_switch then
            -- what the caller saw, for the guard below (a kill means the same whatever it waited for)
            select p.* into v_seen from chat_v11.peek_state() as p;
        end if;
        v_state := chat_v11.lock_state();
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
        if p_kill_switch then
            -- The kill keeps the verdict of the state it stops (gate_snapshot, as chat_v11.current_gates builds it)
            -- and needs nothing else of the Go/No-Go: no stage start read from the history (its cost grows with
            -- the history), no incident. The metric store gets at most 50 ms of the lock budget: when maintenance or
            -- DDL holds it, the snapshot is the most recent evaluation in the history, stamped with its own time
            -- (SPEC 4.3). Only functions of every revision from here on: a kill that waited for a downgrade runs the
            -- restored ones.
            begin
                perform pg_catalog.set_config('lock_timeout', least(50, greatest(1, pg_catalog.ceil(
                    (pg_catalog.current_setting('chat_rollout.lock_deadline')::numeric
                     - extract(epoch from pg_catalog.clock_timestamp())) * 1000)))::bigint::text, true);
                select pg_catalog.jsonb_build_object(
                           'evaluated_at', pg_catalog.to_char(v_now at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                           'gate_p0_ok', g.gate_p0_ok,
                           'gate_p1_ok', g.gate_p1_ok,
                           'rollout_decision', g.rollout_decision,
                           'failing_checks', pg_catalog.to_jsonb(g.failing_checks)
                       )
                  into v_snapshot
                  from chat_v11.evaluate_gates(
                      v_now, v_state.stage, v_state.kill_switch, v_state.promotion_frozen, null, null
                  ) as g;
            exception when lock_not_available then
                select coalesce(h.gate_snapshot, '{}'::jsonb) || pg_catalog.jsonb_build_object(
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
        else
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
        -- dynamic: a kill that waited for a downgrade below revision 0003 finds no incident table
        if pg_catalog.to_regclass('chat_v11.incident') is not null then
            execute 'lock table chat_v11.incident in access share mode';
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
'a resume did; a resume also needs every open P0 incident resolved (RO018).';

-- >>> sql/0650_function_chat_lift_v11_freeze.sql
-- Lifts the promotion freeze, only through the gate (kill switch off, gates green, no open incident).
create or replace function public.chat_lift_v11_freeze(p_reason text)
returns table (
    stage text,
    traffic_percent numeric,
    kill_switch boolean,
    promotion_frozen boolean,
    reason text,
    changed_by text,
    actor text,
    changed_at timestamptz,
    version bigint
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
    v_new record;
begin
    perform chat_v11.begin_write('chat_lift_v11_freeze');
    -- LOCKS: one budget of state_lock_timeout for every wait; running out is RO010 naming the blockers
    begin
        v_state := chat_v11.lock_state();
        select g.* into v_gates from chat_v11.current_gates(pg_catalog.clock_timestamp()) as g;
        -- GUARD: unfreeze only through the gate
        if v_state.kill_switch then
            raise exception using
                errcode = 'RO009',
                message = 'unfreeze refused: the kill switch is on',
                detail = format('Kill switch engaged at stage %s; reason: %s', v_state.stage, v_state.reason),
                hint = 'Resume first with chat_set_v11_rollout_state(stage, false, reason) once the P0 exit criteria hold.';
        end if;
        if pg_catalog.cardinality(v_gates.go_no_go_blockers) > 0 then
            raise exception using
                errcode = 'RO009',
                message = 'unfreeze refused: the gates are not green',
                detail = array_to_string(v_gates.go_no_go_blockers, '; '),
                hint = 'Lift the freeze only with gate_p0_ok, gate_p1_ok, PROCEED and no open P0/P1 incident; '
                    || 'see chat_get_v11_release_gates().';
        end if;
        lock table chat_v11.rollout_history in row exclusive mode;
    exception when lock_not_available then
        perform chat_v11.raise_state_locked(pg_catalog.current_setting('chat_rollout.lock_budget', true)::interval);
    end;
    -- the write outside the block: the state row's new version belongs to the top transaction (state_lockers)
    v_new := chat_v11.apply_transition(
        'unfreeze', v_state.stage, false, false, v_reason, null, v_gates.snapshot, null
    );
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    return query
        select v_new.stage, t.traffic_percent, v_new.kill_switch, v_new.promotion_frozen, v_new.reason,
               v_new.changed_by, v_new.actor, v_new.changed_at, v_new.version
          from chat_v11.stage as t
         where t.stage = v_new.stage;
end
$$;

revoke all on function public.chat_lift_v11_freeze(text) from public;
grant execute on function public.chat_lift_v11_freeze(text) to chat_rollout_operator;
comment on function public.chat_lift_v11_freeze(text) is
'Lift the promotion freeze: only with the kill switch off, gate_p0_ok, gate_p1_ok, PROCEED and no open '
'P0/P1 incident (refused with RO009 otherwise). Returns the new state.';

-- >>> sql/0670_function_chat_set_v11_stage_settings.sql
-- Changes a stage's traffic percent (0-100, along the stage order) and minimum observation window (0 to 7 days);
-- null keeps a value. The traffic of the current stage never changes in place (RO019): the state row is taken
-- first (chat_v11.lock_state, RO010 when busy), then the stage row, so a racing promotion cannot slip between.
create or replace function public.chat_set_v11_stage_settings(
    p_stage text,
    p_traffic_percent numeric default null,
    p_min_observation interval default null
)
returns table (
    stage text,
    ordinal integer,
    traffic_percent numeric,
    min_observation interval
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
    v_old chat_v11.stage;
    v_new chat_v11.stage;
    v_lower numeric;
    v_upper numeric;
    v_state_stage text;
begin
    perform chat_v11.begin_write('chat_set_v11_stage_settings');
    -- values first, before any lock: a refusal names the value and the allowed range
    if p_traffic_percent = 'NaN'::numeric or p_traffic_percent not between 0 and 100 then
        raise exception using
            errcode = 'RO015',
            message = format('traffic percent %s is not valid for stage %s', p_traffic_percent,
                             chat_v11.shown(p_stage)),
            detail = format('Got %s; a traffic percent is between 0 and 100.', p_traffic_percent),
            hint = 'Traffic grows along the stage order; change the neighbouring stages first.';
    end if;
    if p_min_observation not between interval '0' and interval '7 days' then
        raise exception using
            errcode = 'RO015',
            message = format('minimum observation %s is not valid for stage %s', p_min_observation,
                             chat_v11.shown(p_stage)),
            detail = format('Got %s; the observation window is between 0 and 7 days.', p_min_observation),
            hint = 'Pass an interval such as ''30 minutes'' (or ''0'' for no waiting); nothing was changed.';
    end if;
    -- a percent change of the stage the rollout is at (as far as a read can tell) takes the state row first, in
    -- the state calls' lock order and bounded like them; the locked row then answers for certain
    if p_traffic_percent is not null and exists (
        select
          from chat_v11.peek_state() as p
          join chat_v11.stage as t on t.stage = p.stage
         where p.stage = p_stage and t.traffic_percent is distinct from p_traffic_percent
    ) then
        v_state_stage := (chat_v11.lock_state()).stage;
    end if;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    select s.* into v_old from chat_v11.stage as s where s.stage = p_stage for update;
    if not found then
        raise exception using
            errcode = 'RO002',
            message = format('unknown stage %s', chat_v11.shown(p_stage)),
            detail = format('Known stages, in order: %s.',
                            (select string_agg(s.stage, ', ' order by s.ordinal) from chat_v11.stage as s)),
            hint = 'Name one of the known stages.';
    end if;
    v_new := v_old;
    v_new.traffic_percent := coalesce(p_traffic_percent, v_old.traffic_percent);
    v_new.min_observation := coalesce(p_min_observation, v_old.min_observation);

    select max(s.traffic_percent) filter (where s.ordinal < v_old.ordinal),
           min(s.traffic_percent) filter (where s.ordinal > v_old.ordinal)
      into v_lower, v_upper
      from chat_v11.stage as s;
    if v_new.traffic_percent = 'NaN'::numeric
       or v_new.traffic_percent not between 0 and 100
       or (v_old.stage = 'off' and v_new.traffic_percent <> 0)
       or v_new.traffic_percent < coalesce(v_lower, 0)
       or v_new.traffic_percent > coalesce(v_upper, 100) then
        raise exception using
            errcode = 'RO015',
            message = format('traffic percent %s is not valid for stage %s', v_new.traffic_percent, p_stage),
            detail = format('Stage %s must stay within %s..%s %% (the previous and next stages), and off is 0 %%.',
                            p_stage, coalesce(v_lower, 0), coalesce(v_upper, 100)),
            hint = 'Traffic grows along the stage order; change the neighbouring stages first.';
    end if;
    if p_traffic_percent is not null and p_traffic_percent is distinct from v_old.traffic_percent then
        -- without the state row: a promotion into this stage that committed before the stage row was ours is seen
        -- now (it held the stage row FOR KEY SHARE until its commit); a later one waits for this change and copies
        -- the new percent (chat_v11.copy_stage_traffic_percent), which is a change before promoting into it
        if v_state_stage is null then
            select p.stage into v_state_stage from chat_v11.peek_state() as p;
            perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
        end if;
        if v_state_stage = p_stage then
            raise exception using
                errcode = 'RO019',
                message = 'traffic of the current stage cannot change in place',
                detail = format('The rollout is at stage %s with %s %% of the traffic; %s %% was asked. A change in '
                                'place would move traffic without a history row, a new version or a notification.',
                                p_stage, v_old.traffic_percent, p_traffic_percent),
                hint = format('Roll back to a lower stage first (chat_set_v11_rollout_state(''%s'', false, '
                              'reason)), change %s, then promote again; or change a stage before promoting into it. '
                              'Nothing was changed.',
                              coalesce((select s.stage from chat_v11.stage as s where s.ordinal < v_old.ordinal
                                         order by s.ordinal desc limit 1), 'off'),
                              p_stage);
        end if;
    end if;

    update chat_v11.stage as s
       set traffic_percent = v_new.traffic_percent,
           min_observation = v_new.min_observation
     where s.stage = p_stage;
    insert into chat_v11.config_change (actor, target, target_key, old_value, new_value)
    values (
        chat_v11.claimed_actor(), 'stage', p_stage,
        jsonb_build_object('traffic_percent', v_old.traffic_percent, 'min_observation', v_old.min_observation),
        jsonb_build_object('traffic_percent', v_new.traffic_percent, 'min_observation', v_new.min_observation)
    );
    return query select v_new.stage, v_new.ordinal, v_new.traffic_percent, v_new.min_observation;
end
$$;

revoke all on function public.chat_set_v11_stage_settings(text, numeric, interval) from public;
grant execute on function public.chat_set_v11_stage_settings(text, numeric, interval) to chat_rollout_admin;
comment on function public.chat_set_v11_stage_settings(text, numeric, interval) is
'Admin: set a stage''s traffic percent (0-100, growing along the stage order, off = 0) and minimum '
'observation window (0 to 7 days); null keeps the current value. The percent of the stage the rollout is at '
'cannot change in place (RO019). Every change is audited in chat_v11.config_change.';

-- >>> sql/0680_function_chat_set_v11_policy.sql
-- Changes a rollout policy, validated per key: auto_kill (boolean), p0_exit_window (30-60 minutes),
-- state_lock_timeout (100 ms - 60 s), retention (1-400 days). A refusal (RO014) names the value and the range.
create or replace function public.chat_set_v11_policy(p_key text, p_value jsonb)
returns table (
    key text,
    value jsonb,
    description text,
    changed_at timestamptz,
    changed_by text
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_old chat_v11.policy;
    v_interval interval;
    v_problem text;
begin
    perform chat_v11.begin_write('chat_set_v11_policy');
    select p.* into v_old from chat_v11.policy as p where p.key = p_key for update;
    if not found then
        raise exception using
            errcode = 'RO014',
            message = format('unknown policy %s', chat_v11.shown(p_key)),
            detail = format('Known policies: %s.', (select string_agg(p.key, ', ' order by p.key) from chat_v11.policy as p)),
            hint = 'Name one of the known policies.';
    end if;

    if p_key = 'auto_kill' then
        if jsonb_typeof(p_value) is distinct from 'boolean' then
            v_problem := 'auto_kill takes a JSON boolean: ''true'' or ''false''';
        end if;
    elsif jsonb_typeof(p_value) is distinct from 'string' then
        v_problem := format('%s takes a JSON string holding an interval, such as ''"30 minutes"''', p_key);
    else
        begin
            v_interval := (p_value #>> '{}')::interval;
        exception when others then
            v_problem := format('%s is not an interval', chat_v11.shown(p_value #>> '{}'));
        end;
        if v_problem is null then
            -- every interval policy feeds a computation (now() - window, a lock timeout, a partition cutoff): an
            -- unbounded value overflows a timestamp (22008) or disables the guard it sizes
            v_problem := case
                when p_key = 'p0_exit_window' and v_interval not between interval '30 minutes' and interval '60 minutes'
                    then format('p0_exit_window must be between 30 and 60 minutes (playbook section 5); got %s',
                                v_interval)
                when p_key = 'state_lock_timeout'
                     and v_interval not between interval '100 milliseconds' and interval '60 seconds'
                    then format('state_lock_timeout must be between 100 milliseconds and 60 seconds; got %s',
                                v_interval)
                when p_key = 'retention' and v_interval not between interval '1 day' and interval '400 days'
                    then format('retention must be between 1 day and 400 days; got %s', v_interval)
            end;
        end if;
    end if;
    if v_problem is not null then
        raise exception using
            errcode = 'RO014',
            message = format('invalid value %s for policy %s', chat_v11.shown(p_value::text), p_key),
            detail = v_problem || '.',
            hint = format('Current value: %s; nothing was changed.', v_old.value);
    end if;

    update chat_v11.policy as p
       set value = p_value, changed_at = clock_timestamp(), changed_by = session_user
     where p.key = p_key;
    insert into chat_v11.config_change (actor, target, target_key, old_value, new_value)
    values (chat_v11.claimed_actor(), 'policy', p_key, v_old.value, p_value);
    return query
        select p.key, p.value, p.description, p.changed_at, p.changed_by from chat_v11.policy as p where p.key = p_key;
end
$$;

revoke all on function public.chat_set_v11_policy(text, jsonb) from public;
grant execute on function public.chat_set_v11_policy(text, jsonb) to chat_rollout_admin;
comment on function public.chat_set_v11_policy(text, jsonb) is
'Admin: set a rollout policy. auto_kill (boolean, default true), p0_exit_window (30-60 minutes, default '
'"30 minutes"), state_lock_timeout (100 ms - 60 s, default "2 seconds"), retention (1-400 days, default '
'"30 days"). Out-of-range values are refused (RO014). Audited.';

-- >>> sql/0690_function_chat_set_v11_metric_rule.sql
-- Changes the rule of one metric check: window, freshness, min_volume, factor, slack, threshold, alpha,
-- static_baseline (null clears it), each only where the metric's rule uses it and within the bounds of README's
-- configuration table (RO016 naming the value and the range); every change is audited.
create or replace function public.chat_set_v11_metric_rule(p_metric text, p_settings jsonb)
returns table (
    metric text,
    severity text,
    rule text,
    "window" interval,
    freshness interval,
    min_volume numeric,
    factor numeric,
    slack numeric,
    threshold numeric,
    alpha numeric,
    static_baseline numeric
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_old jsonb;
    v_unknown text;
    v_rule record;
    v_applies text[];
    v_problems text[];
    v_keys constant text[] := array[
        'window', 'freshness', 'min_volume', 'factor', 'slack', 'threshold', 'alpha', 'static_baseline'
    ];
begin
    perform chat_v11.begin_write('chat_set_v11_metric_rule');
    select pg_catalog.to_jsonb(m.*) into v_old from chat_v11.metric as m where m.metric = p_metric for update;
    if v_old is null then
        raise exception using
            errcode = 'RO021',
            message = format('unknown metric %s', chat_v11.shown(p_metric)),
            detail = format('Known metrics: %s.',
                            (select string_agg(m.metric, ', ' order by m.ordinal) from chat_v11.metric as m)),
            hint = 'Name a metric of the catalog.';
    end if;
    if p_settings is null or jsonb_typeof(p_settings) <> 'object' or p_settings = '{}' then
        raise exception using
            errcode = 'RO016',
            message = 'p_settings must be a non-empty JSON object',
            detail = format('Keys: %s.', array_to_string(v_keys, ', ')),
            hint = 'For example: chat_set_v11_metric_rule(''full_state_rate'', ''{"factor": 2, "window": "20 minutes"}'').';
    end if;
    select string_agg(quote_literal(k), ', ') into v_unknown
      from jsonb_object_keys(p_settings) as k where k <> all (v_keys);
    if v_unknown is not null then
        raise exception using
            errcode = 'RO016',
            message = format('unknown metric rule keys: %s', v_unknown),
            detail = format('Known keys: %s.', array_to_string(v_keys, ', ')),
            hint = 'Check the spelling; nothing was changed.';
    end if;

    select string_agg(format('%s (%s)', e.key, jsonb_typeof(e.value)), ', ' order by e.key) into v_unknown
      from jsonb_each(p_settings) as e
     where jsonb_typeof(e.value) <> case when e.key in ('window', 'freshness') then 'string' else 'number' end
       and not (e.key = 'static_baseline' and jsonb_typeof(e.value) = 'null');
    if v_unknown is not null then
        raise exception using
            errcode = 'RO016',
            message = format('wrong JSON type for metric rule keys: %s', v_unknown),
            detail = 'window and freshness are interval strings such as "20 minutes"; the other keys are JSON numbers; '
                || 'static_baseline may be null (no static baseline).',
            hint = 'Nothing was changed; send valid values.';
    end if;

    -- only the keys the metric's rule reads: a setting that changes nothing must not look like it does
    select m.kind, m.rule into v_rule from chat_v11.metric as m where m.metric = p_metric;
    v_applies := array['window', 'freshness', 'min_volume']
        || case
            when v_rule.rule = 'threshold' then array['threshold']
            when v_rule.rule = 'baseline_ratio' and v_rule.kind = 'rate'
                then array['factor', 'slack', 'alpha', 'static_baseline']
            when v_rule.rule = 'baseline_ratio' then array['factor', 'static_baseline']
            else '{}'::text[]
        end;
    select string_agg(quote_literal(k), ', ' order by k) into v_unknown
      from jsonb_object_keys(p_settings) as k where k <> all (v_applies);
    if v_unknown is not null then
        raise exception using
            errcode = 'RO016',
            message = format('metric rule keys %s do not apply to %s', v_unknown, p_metric),
            detail = format('%s is a %s metric with rule %s; its keys: %s.', p_metric, v_rule.kind, v_rule.rule,
                            array_to_string(v_applies, ', ')),
            hint = 'Nothing was changed; send only the keys of this rule.';
    end if;

    begin
        update chat_v11.metric as m
           set window_length = coalesce((p_settings ->> 'window')::interval, m.window_length),
               freshness = coalesce((p_settings ->> 'freshness')::interval, m.freshness),
               min_volume = coalesce((p_settings ->> 'min_volume')::numeric, m.min_volume),
               factor = case when p_settings ? 'factor' then (p_settings ->> 'factor')::numeric else m.factor end,
               slack = case when p_settings ? 'slack' then (p_settings ->> 'slack')::numeric else m.slack end,
               threshold = case when p_settings ? 'threshold' then (p_settings ->> 'threshold')::numeric
                                else m.threshold end,
               alpha = case when p_settings ? 'alpha' then (p_settings ->> 'alpha')::numeric else m.alpha end,
               static_baseline = case when p_settings ? 'static_baseline'
                                      then (p_settings ->> 'static_baseline')::numeric else m.static_baseline end
         where m.metric = p_metric;
        -- the bounds of every value a gate computes with (README, configuration): out of them a check overflows,
        -- can never fail (a healthy-looking gate over a 100 % stall) or always fails (a kill of a healthy rollout)
        select array_remove(array[
            case when 'NaN' in (m.min_volume, m.factor, m.slack, m.threshold, m.alpha, m.static_baseline)
                then 'NaN is not a value' end,
            case when m.window_length not between interval '1 minute' and interval '1 day'
                then format('window %s: between 1 minute and 1 day', m.window_length) end,
            case when m.freshness not between interval '10 seconds' and m.window_length
                then format('freshness %s: between 10 seconds and the window (%s)', m.freshness, m.window_length) end,
            case when m.min_volume < 1 or m.min_volume <> trunc(m.min_volume)
                      or (m.kind = 'rate' and m.min_volume > 1000000000)
                then format('min_volume %s: a whole number of at least 1%s', m.min_volume,
                            case when m.kind = 'rate' then ' and at most 1000000000 events' else '' end)
                 when m.kind <> 'rate'
                      and m.min_volume > extract(epoch from m.window_length)::numeric / 10
                then format('min_volume %s: at most %s, the 10-second buckets one cohort reports in the window %s',
                            m.min_volume, floor(extract(epoch from m.window_length)::numeric / 10), m.window_length)
            end,
            case when m.factor not between 1 and 10
                then format('factor %s: between 1 and 10', m.factor) end,
            case when m.rule = 'baseline_ratio' and m.kind = 'rate' and m.slack not between 0 and 0.1
                then format('slack %s: between 0 and 0.1 (an absolute rate)', m.slack) end,
            case when m.alpha <= 0 or m.alpha >= 0.5
                then format('alpha %s: above 0 and below 0.5', m.alpha) end,
            case when m.rule = 'threshold' and m.kind = 'rate' and m.threshold not between 0 and 0.5
                then format('threshold %s: a rate threshold is between 0 and 0.5 (1 or more lets a 100 %% rate pass, '
                            'below 0 fails a healthy rollout)', m.threshold)
                 when m.rule = 'threshold' and m.kind = 'count'
                      and (m.threshold not between 0 and 1000000000 or m.threshold <> trunc(m.threshold))
                then format('threshold %s: a count threshold is a whole number from 0 to 1000000000', m.threshold)
                 when m.rule = 'threshold' and m.kind = 'latency_ms' and not (m.threshold > 0 and m.threshold <= 600000)
                then format('threshold %s: a latency threshold is above 0 and at most 600000 ms', m.threshold)
                 when m.rule in ('zero', 'no_new') and m.threshold <> 0
                then format('threshold %s: an exactly-zero rule keeps threshold 0', m.threshold)
            end,
            case when m.kind = 'rate' and m.static_baseline not between 0 and 0.5
                then format('static_baseline %s: a rate baseline is between 0 and 0.5', m.static_baseline)
                 when m.kind = 'rate' and m.static_baseline * m.factor + coalesce(m.slack, 0) >= 1
                then format('static_baseline %s x factor %s + slack %s = %s: the limit must stay below 1 or the check '
                            'can never fail', m.static_baseline, m.factor, coalesce(m.slack, 0),
                            m.static_baseline * m.factor + coalesce(m.slack, 0))
                 when m.kind = 'latency_ms' and not (m.static_baseline > 0 and m.static_baseline <= 600000)
                then format('static_baseline %s: a latency baseline is above 0 and at most 600000 ms',
                            m.static_baseline)
            end
        ], null)
          into v_problems
          from chat_v11.metric as m
         where m.metric = p_metric;
        if cardinality(v_problems) > 0 then
            raise exception using errcode = 'check_violation', message = array_to_string(v_problems, '; ');
        end if;
    exception when data_exception or check_violation or not_null_violation then
        raise exception using
            errcode = 'RO016',
            message = format('invalid metric rule for %s: %s', p_metric, chat_v11.shown(p_settings::text)),
            detail = format('%s. Ranges: window 1 minute to 1 day; freshness 10 seconds to the window; min_volume a '
                            'whole number >= 1 (buckets: at most the window / 10 s); factor 1 to 10; slack 0 to 0.1; '
                            'alpha above 0, below 0.5; threshold of a rate 0 to 0.5; static_baseline of a rate 0 to '
                            '0.5 (with factor and slack below 1), of a latency above 0 to 600000 ms.',
                            chat_v11.shown(sqlerrm)),
            hint = 'Nothing was changed; send values within the ranges.';
    end;

    insert into chat_v11.config_change (actor, target, target_key, old_value, new_value)
    select chat_v11.claimed_actor(), 'metric_rule', p_metric, v_old, pg_catalog.to_jsonb(m.*)
      from chat_v11.metric as m where m.metric = p_metric;
    return query
        select m.metric, m.severity, m.rule, m.window_length, m.freshness, m.min_volume, m.factor, m.slack,
               m.threshold, m.alpha, m.static_baseline
          from chat_v11.metric as m where m.metric = p_metric;
end
$$;

revoke all on function public.chat_set_v11_metric_rule(text, jsonb) from public;
grant execute on function public.chat_set_v11_metric_rule(text, jsonb) to chat_rollout_admin;
comment on function public.chat_set_v11_metric_rule(text, jsonb) is
'Admin: change a metric check''s rule with a JSON object of window, freshness, min_volume, factor, slack, '
'threshold, alpha, static_baseline (null clears a static baseline), each only where the rule uses it. Unknown or '
'inapplicable keys and values out of range (README, configuration) are refused (RO016); every change is audited.';

-- >>> sql/0710_function_chat_run_v11_guardrails.sql
-- The time-based guardrails, safe to run every few seconds (pg_cron or any scheduler), idempotent: a P0 failure
-- engages the kill switch, stale P0 data freezes promotion. No DDL and no lock on the metric store beyond reads;
-- missing partitions ahead are only reported (action maintenance): public.chat_run_v11_maintenance() creates them.
create or replace function public.chat_run_v11_guardrails()
returns table (action text, version bigint, detail text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_now timestamptz := pg_catalog.clock_timestamp();
    v_version bigint;
    v_state record;
    v_stale text[];
    v_gates record;
    v_new record;
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
    v_missing text;
begin
    perform chat_v11.begin_write('chat_run_v11_guardrails');
    -- GUARD: a failing P0 check kills (the same rule as at ingestion, for evidence the writer missed)
    v_version := chat_v11.auto_kill(v_now, 'guardrail run');
    if v_version is not null then
        return query select 'auto_kill'::text, v_version, h.reason
                       from chat_v11.rollout_history as h where h.version = v_version;
    end if;

    -- GUARD: stale or missing P0 data freezes promotion while v1.1 traffic flows
    select s.stage, s.kill_switch, s.promotion_frozen into v_state from chat_v11.rollout_state as s;
    if v_state.stage <> 'off' and not v_state.kill_switch and not v_state.promotion_frozen then
        select array_agg(format('%s: %s', c.metric, c.explanation) order by c.metric)
          into v_stale
          from chat_v11.evaluate_checks(v_now, v_state.stage, false) as c
         where c.severity = 'P0' and c.status = 'inconclusive';
        if v_stale is not null then
            v_state := chat_v11.lock_state();
            if v_state.stage <> 'off' and not v_state.kill_switch and not v_state.promotion_frozen then
                select g.* into v_gates from chat_v11.current_gates(v_now) as g;
                v_new := chat_v11.apply_transition(
                    'hold', v_state.stage, false, true,
                    pg_catalog.left('guardrail: P0 data is stale or missing, promotion frozen: '
                                    || array_to_string(v_stale, '; '), 500),
                    null, v_gates.snapshot, 'guardrail'
                );
                return query select 'hold'::text, v_new.version, v_new.reason;
            end if;
        end if;
    end if;

    -- MAINTENANCE OVERDUE: the partitions of today and the next 3 UTC days (a catalog lookup, no lock taken)
    select string_agg(pg_catalog.to_char(d.day, 'YYYY-MM-DD'), ', ' order by d.day)
      into v_missing
      from pg_catalog.generate_series(0, 3) as g (n)
     cross join lateral (select (v_now at time zone 'UTC')::date + g.n as day) as d
     where pg_catalog.to_regclass('chat_v11.metric_sample_p' || pg_catalog.to_char(d.day, 'YYYYMMDD')) is null;
    if v_missing is not null then
        return query select 'maintenance'::text, null::bigint,
                            format('metric store maintenance is overdue: no daily partition for %s (samples of those '
                                   'days would land in metric_sample_default); schedule '
                                   'chat_run_v11_maintenance(), e.g. hourly with pg_cron', v_missing);
    end if;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
end
$$;

revoke all on function public.chat_run_v11_guardrails() from public;
grant execute on function public.chat_run_v11_guardrails() to chat_rollout_ingest;
comment on function public.chat_run_v11_guardrails() is
'Guardrails to run every few seconds (idempotent): a failing P0 check engages the kill switch (auto_kill), '
'stale or missing P0 data freezes promotion (hold, actor guardrail). Reports maintenance overdue when a daily '
'partition of today or the next 3 days is missing (public.chat_run_v11_maintenance() creates them; guardrails run '
'no DDL). Returns one row per action taken.';

-- >>> sql/0715_function_chat_run_v11_maintenance.sql
-- Partition maintenance of the metric store: daily partitions created ahead, days past the retention policy dropped
-- whole. Each DDL waits at most 50 ms for its locks (else that step is skipped and reported); the locks it got last
-- until the caller's commit, so run it alone in its own transaction (autocommit, as pg_cron does), never inside one.
create or replace function public.chat_run_v11_maintenance()
returns table (action text, detail text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_now timestamptz := pg_catalog.clock_timestamp();
    v_today date := (pg_catalog.clock_timestamp() at time zone 'UTC')::date;
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
    v_retention interval := coalesce(chat_v11.policy_interval('retention'), interval '30 days');
    v_xmax xid;
    v_holders text;
    v_day date;
    v_created text[] := '{}'::text[];
    v_busy text[] := '{}'::text[];
    v_dropped text[] := '{}'::text[];
    v_deleted bigint := 0::bigint;
begin
    perform chat_v11.begin_write('chat_run_v11_maintenance');
    -- one run at a time, under a row lock that only the project's functions can take (the table grants nothing):
    -- a busy lock is reported, never waited for
    perform from chat_v11.maintenance as m where m.job = 'metric_sample' for update skip locked;
    if not found then
        select m.xmax into v_xmax from chat_v11.maintenance as m where m.job = 'metric_sample';
        select pg_catalog.string_agg(pg_catalog.format('pid %s', l.pid), ', ' order by l.pid)
          into v_holders
          from pg_catalog.pg_locks as l
         where l.locktype = 'transactionid'
           and l.mode = 'ExclusiveLock'
           and l.granted
           and l.transactionid in (select h.x from chat_v11.xmax_holders(v_xmax) as h (x))
           and l.pid <> pg_catalog.pg_backend_pid();
        return query select 'skipped'::text,
                            pg_catalog.format('metric store maintenance skipped: another maintenance run holds the '
                                              || 'maintenance lock (%s); the next run retries',
                                              coalesce(v_holders, 'a transaction that has just ended'));
        return;
    end if;

    perform pg_catalog.set_config('lock_timeout', '50ms', true);
    -- AHEAD: at least 3 days ahead at all times; when a day in that span is missing, up to a week ahead at once (DDL
    -- every few days, not at every midnight). One day per subtransaction: a busy day is skipped, the others are made.
    if exists (
        select
          from pg_catalog.generate_series(-1, 3) as g (d)
         where pg_catalog.to_regclass('chat_v11.metric_sample_p' || pg_catalog.to_char(v_today + g.d, 'YYYYMMDD'))
               is null
    ) then
        for v_day in select v_today + g.d from pg_catalog.generate_series(-1, 7) as g (d) order by g.d loop
            if pg_catalog.to_regclass('chat_v11.metric_sample_p' || pg_catalog.to_char(v_day, 'YYYYMMDD')) is null then
                begin
                    perform chat_v11.ensure_sample_partitions(v_day, v_day);
                    v_created := v_created || pg_catalog.to_char(v_day, 'YYYY-MM-DD');
                exception when lock_not_available then
                    v_busy := v_busy || pg_catalog.format('creating the partition of %s',
                                                          pg_catalog.to_char(v_day, 'YYYY-MM-DD'));
                end;
            end if;
        end loop;
    end if;

    -- RETENTION: whole days dropped (ACCESS EXCLUSIVE on the parent for a moment), the straddling day trimmed
    begin
        select p.dropped, p.deleted into v_dropped, v_deleted from chat_v11.prune_samples(v_now - v_retention) as p;
    exception when lock_not_available then
        v_busy := v_busy || pg_catalog.format('removing the samples older than %s', v_retention);
    end;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);

    if pg_catalog.cardinality(v_created) > 0 then
        return query select 'partition'::text,
                            pg_catalog.format('%s daily partitions of the metric store created ahead (%s .. %s)',
                                              pg_catalog.cardinality(v_created), v_created[1],
                                              v_created[pg_catalog.cardinality(v_created)]);
    end if;
    if v_deleted > 0 or pg_catalog.cardinality(v_dropped) > 0 then
        return query select 'prune'::text,
                            pg_catalog.format('samples older than %s removed: %s daily partitions dropped whole%s, '
                                              || '%s rows deleted one by one', v_retention,
                                              pg_catalog.cardinality(v_dropped),
                                              case when pg_catalog.cardinality(v_dropped) > 0
                                                   then pg_catalog.format(' (%s .. %s)', v_dropped[1],
                                                        v_dropped[pg_catalog.cardinality(v_dropped)])
                                                   else '' end,
                                              v_deleted);
    end if;
    if pg_catalog.cardinality(v_busy) > 0 then
        return query select 'skipped'::text,
                            pg_catalog.format('metric store maintenance step skipped, a lock was busy for 50 ms: %s; '
                                              || 'the next run retries', pg_catalog.array_to_string(v_busy, ', '));
    end if;
end
$$;

revoke all on function public.chat_run_v11_maintenance() from public;
grant execute on function public.chat_run_v11_maintenance() to chat_rollout_ingest;
comment on function public.chat_run_v11_maintenance() is
'Ingest: partition maintenance of the metric store, to schedule on its own (e.g. hourly with pg_cron, in '
'autocommit): daily partitions kept 3 to 7 days ahead, days past the retention policy dropped whole. One run at a '
'time (a busy run says skipped); each DDL waits at most 50 ms for a lock, else skipped and retried next run. Its '
'locks last until the caller commits: never call it inside a longer transaction. One row per action: partition, '
'prune, skipped.';

-- >>> sql/0800_function_chat_open_v11_incident.sql
-- Declares an incident (playbook section 4, step 1): P0/P1 freeze promotion at once, P0 engages the kill switch.
-- One incident at a time: while one is not closed, a declaration joins it (timeline, severity raised, NOTICE).
create or replace function public.chat_open_v11_incident(p_severity text, p_summary text)
returns table (
    incident_id bigint,
    severity text,
    status text,
    summary text,
    opened_at timestamptz,
    opened_by text,
    rollout_version bigint
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_summary text := chat_v11.checked_reason(p_summary);
    v_incident chat_v11.incident;
    v_version bigint;
    v_raised boolean;
    v_reopen boolean;
    v_notice text;
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
begin
    perform chat_v11.begin_write('chat_open_v11_incident');
    perform chat_v11.checked_severity(p_severity);
    -- lock order: the state row, then incident rows. Every declaration (P2 too) and the guardrail take the
    -- state row first, so racing declarations and guardrail runs decide one after the other: one incident.
    perform chat_v11.lock_state();

    -- ONE AT A TIME: the incident not closed yet (resolved included: it waits for its close), active first
    select i.* into v_incident
      from chat_v11.incident as i
     where i.status <> 'closed'
     order by i.status = 'resolved', i.severity, i.opened_at, i.incident_id
     limit 1
       for update;
    if v_incident.incident_id is null then
        insert into chat_v11.incident (severity, summary, opened_actor)
        values (p_severity, v_summary, chat_v11.claimed_actor())
        returning * into v_incident;
        perform chat_v11.incident_log(v_incident.incident_id, 'opened',
                                      format('%s incident declared: %s', p_severity, v_summary), null);
        v_version := chat_v11.incident_rollout_effect(
            p_severity,
            pg_catalog.left(format('incident %s %s: %s', v_incident.incident_id, p_severity, v_summary), 500),
            null
        );
        perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
        return query select v_incident.incident_id, v_incident.severity, v_incident.status, v_incident.summary,
                            v_incident.opened_at, v_incident.opened_by, v_version;
        return;
    end if;

    -- JOIN: the declaration goes to the open incident's timeline; a higher severity raises it (with its
    -- effect); a P0/P1 declaration reopens a resolved incident (the gates and the freeze see it active again)
    v_raised := p_severity < v_incident.severity;  -- 'P0' < 'P1' < 'P2'
    v_reopen := v_incident.status = 'resolved' and p_severity in ('P0', 'P1');
    v_notice := format(
        'incident %s is already open (%s%s, opened by %s at %s UTC): this declaration joined it',
        v_incident.incident_id, v_incident.severity,
        case when v_incident.status <> 'open' then ', ' || v_incident.status end,
        coalesce(v_incident.opened_actor, v_incident.opened_by),
        pg_catalog.to_char(v_incident.opened_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS')
    ) || case when v_raised then format(', severity %s -> %s', v_incident.severity, p_severity) else '' end
      || case when v_reopen then ', status resolved -> open' else '' end;
    perform chat_v11.incident_log(
        v_incident.incident_id, 'fact',
        format('%s declaration joined this incident (one incident at a time): %s', p_severity, v_summary),
        jsonb_build_object('declaration', jsonb_build_object(
            'severity', p_severity, 'summary', v_summary, 'incident_severity', v_incident.severity,
            'incident_status', v_incident.status
        ))
    );
    if v_reopen then
        update chat_v11.incident as i set status = 'open', resolved_at = null
         where i.incident_id = v_incident.incident_id;
        perform chat_v11.incident_log(
            v_incident.incident_id, 'status',
            pg_catalog.left(format('status resolved -> open: a %s declaration joined it: %s', p_severity,
                                   v_summary), 2000),
            jsonb_build_object('from', 'resolved', 'to', 'open')
        );
    end if;
    if v_raised then
        v_version := chat_v11.set_incident_severity(
            v_incident, p_severity, format('a %s declaration joined it: %s', p_severity, v_summary), null, null
        );
    else
        -- the declaration's own effect: a P0 declaration engages the kill switch even if a resume turned it off
        v_version := chat_v11.incident_rollout_effect(
            p_severity,
            pg_catalog.left(format('incident %s %s (declaration joined): %s', v_incident.incident_id, p_severity,
                                   v_summary), 500),
            null
        );
    end if;
    select i.* into v_incident from chat_v11.incident as i where i.incident_id = v_incident.incident_id;
    raise notice '%', v_notice;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    return query select v_incident.incident_id, v_incident.severity, v_incident.status, v_incident.summary,
                        v_incident.opened_at, v_incident.opened_by, v_version;
end
$$;

revoke all on function public.chat_open_v11_incident(text, text) from public;
grant execute on function public.chat_open_v11_incident(text, text) to chat_rollout_operator;
comment on function public.chat_open_v11_incident(text, text) is
'Declare an incident (P0, P1 or P2) with a summary. P0 and P1 freeze promotion at once; P0 also engages the '
'kill switch unless it is on (playbook section 4). One incident at a time: while one is not closed, the '
'declaration joins it (timeline entry, severity raised if higher, a resolved one reopened by P0/P1, NOTICE) and '
'that incident is returned. Returns the incident and the rollout version it wrote.';

-- >>> sql/0880_function_chat_get_v11_incident_checklist.sql
-- The playbook's on-call checklist (section 11) for one incident, item by item, from facts in the database,
-- plus the IC's 10-minute decision cadence.
create or replace function public.chat_get_v11_incident_checklist(p_incident_id bigint)
returns table (item integer, title text, status text, evidence text)
language plpgsql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_i chat_v11.incident;
    v_active boolean;
    v_entry record;
    v_row record;
    v_kill record;
    v_failures text[];
    v_problems text[];
    v_at_open record;
begin
    v_i := chat_v11.get_incident(p_incident_id);
    v_active := v_i.status in ('open', 'mitigated');
    select s.* into v_at_open from chat_v11.state_at(v_i.opened_at) as s;

    -- 1. Severity assigned
    item := 1; title := 'Severity assigned'; status := 'done';
    evidence := format('%s, declared %s UTC by %s', v_i.severity,
                       to_char(v_i.opened_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'), v_i.opened_by);
    return next;

    -- 2. SQL snapshot taken
    select e.* into v_entry from chat_v11.incident_entry as e
     where e.incident_id = p_incident_id and e.kind = 'snapshot' order by e.entry_id limit 1;
    item := 2; title := 'SQL snapshot taken';
    status := case when v_entry.entry_id is null then 'not done' else 'done' end;
    evidence := case when v_entry.entry_id is null then 'no snapshot: call chat_snapshot_v11_incident(id)'
                     else format('snapshot at %s UTC by %s', to_char(v_entry.at at time zone 'UTC', 'HH24:MI:SS'),
                                 v_entry.recorded_by) end;
    return next;

    -- 3. Rollout freeze on
    select h.* into v_row from chat_v11.rollout_history as h
     where h.changed_at >= v_i.opened_at and h.promotion_frozen order by h.version limit 1;
    item := 3; title := 'Rollout freeze on';
    if v_i.severity = 'P2' then
        status := 'n/a'; evidence := 'P2: no freeze required';
    elsif coalesce(v_at_open.promotion_frozen, false) then
        status := 'done'; evidence := format('already frozen when declared (version %s)', v_at_open.version);
    elsif v_row.version is not null then
        status := 'done';
        evidence := format('%s at version %s, %s UTC', v_row.action, v_row.version,
                           to_char(v_row.changed_at at time zone 'UTC', 'HH24:MI:SS'));
    else
        status := 'not done'; evidence := 'promotion is not frozen';
    end if;
    return next;

    -- 4. Kill switch on for P0
    select h.* into v_kill from chat_v11.rollout_history as h
     where h.changed_at >= v_i.opened_at and h.to_kill_switch and not coalesce(h.from_kill_switch, false)
     order by h.version limit 1;
    item := 4; title := 'Kill switch on for P0';
    if v_i.severity <> 'P0' then
        status := 'n/a'; evidence := format('%s: no kill switch required', v_i.severity);
    elsif coalesce(v_at_open.kill_switch, false) then
        status := 'done'; evidence := format('already on when declared (version %s)', v_at_open.version);
    elsif v_kill.version is not null then
        status := 'done';
        evidence := format('%s at version %s, %s UTC', v_kill.action, v_kill.version,
                           to_char(v_kill.changed_at at time zone 'UTC', 'HH24:MI:SS'));
    else
        status := 'not done'; evidence := 'the kill switch has not been engaged';
    end if;
    return next;

    -- 5. Client fallback confirmed
    select e.* into v_entry from chat_v11.incident_entry as e
     where e.incident_id = p_incident_id and e.kind = 'fallback_confirmed' order by e.entry_id limit 1;
    item := 5; title := 'Client fallback confirmed';
    if v_i.severity <> 'P0' then
        status := 'n/a'; evidence := format('%s: the P0 runbook''s client fallback does not apply', v_i.severity);
    elsif v_entry.entry_id is null then
        status := 'not done'; evidence := 'no fallback_confirmed entry in the timeline';
    else
        status := 'done'; evidence := format('%s (%s UTC, %s)', v_entry.body,
                                             to_char(v_entry.at at time zone 'UTC', 'HH24:MI:SS'), v_entry.recorded_by);
    end if;
    return next;

    -- 6. Root cause localized by layer
    select e.* into v_entry from chat_v11.incident_entry as e
     where e.incident_id = p_incident_id and e.kind = 'root_cause' order by e.entry_id desc limit 1;
    item := 6; title := 'Root cause localized by layer';
    status := case when v_entry.entry_id is null then 'not done' else 'done' end;
    evidence := coalesce(v_entry.body, 'no root_cause entry (''layer: cause'') in the timeline');
    return next;

    -- 7. Exit criteria met
    item := 7; title := 'Exit criteria met';
    if v_i.severity = 'P2' then
        status := 'n/a'; evidence := 'P2: no exit criteria from the gates';
    elsif v_i.status = 'closed' then
        status := 'done';
        evidence := format('held when resolved at %s UTC; closed at %s UTC',
                           to_char(v_i.resolved_at at time zone 'UTC', 'HH24:MI:SS'),
                           to_char(v_i.closed_at at time zone 'UTC', 'HH24:MI:SS'));
    elsif v_i.status = 'resolved' then
        -- checked again now, as the close does (a relapse after resolved blocks the close, RO037)
        v_failures := chat_v11.incident_exit_failures(v_i.severity, pg_catalog.now());
        status := case when cardinality(v_failures) = 0 then 'done' else 'not done' end;
        evidence := format('held when resolved at %s UTC; ',
                           to_char(v_i.resolved_at at time zone 'UTC', 'HH24:MI:SS'))
            || case when cardinality(v_failures) = 0 then 'they hold now'
                    else 'fail now (relapse, the close is refused): ' || array_to_string(v_failures, '; ') end;
    else
        v_failures := chat_v11.incident_exit_failures(v_i.severity, pg_catalog.now());
        status := case when cardinality(v_failures) = 0 then 'done' else 'not done' end;
        evidence := case when cardinality(v_failures) = 0 then 'they hold now'
                         else array_to_string(v_failures, '; ') end;
    end if;
    return next;

    -- 8. Rollout resume only through the gate
    item := 8; title := 'Rollout resume only through the gate';
    if v_kill.version is null and not coalesce(v_at_open.kill_switch, false) then
        status := 'n/a'; evidence := 'the kill switch was not engaged';
    else
        select h.* into v_row from chat_v11.rollout_history as h
         where h.changed_at >= v_i.opened_at and h.action = 'resume' order by h.version desc limit 1;
        if v_row.version is null then
            status := 'not done'; evidence := 'the kill switch is still on: resume through the P0 exit criteria';
        else
            status := 'done';
            evidence := format('resume at version %s, %s UTC, through the P0 exit criteria', v_row.version,
                               to_char(v_row.changed_at at time zone 'UTC', 'HH24:MI:SS'));
        end if;
    end if;
    return next;

    -- 9. Postmortem created
    item := 9; title := 'Postmortem created';
    status := case when v_i.postmortem is null then 'not done' else 'done' end;
    evidence := case when v_i.postmortem is null then 'no postmortem: chat_put_v11_postmortem(id, ...)'
                     else 'stored' end;
    return next;

    -- 10. Action items assigned
    item := 10; title := 'Action items assigned';
    v_problems := case when v_i.postmortem is null then array['no postmortem yet']
                       else chat_v11.postmortem_problems(v_i.postmortem) end;
    status := case when cardinality(v_problems) = 0 then 'done' else 'not done' end;
    evidence := case when cardinality(v_problems) = 0
                     then format('%s action items, each with an owner and a deadline',
                                 jsonb_array_length(v_i.postmortem -> 'action_items'))
                     else array_to_string(v_problems, '; ') end;
    return next;

    -- 11. The IC decides every 10 minutes
    select e.* into v_entry from chat_v11.incident_entry as e
     where e.incident_id = p_incident_id and e.kind = 'decision' order by e.entry_id desc limit 1;
    item := 11; title := 'IC decision every 10 minutes';
    if not v_active then
        status := 'n/a'; evidence := format('incident %s', v_i.status);
    elsif coalesce(v_entry.at, v_i.opened_at) < pg_catalog.now() - interval '10 minutes' then
        status := 'overdue';
        evidence := format('last decision %s', coalesce(to_char(v_entry.at at time zone 'UTC', 'HH24:MI:SS') || ' UTC',
                                                        'none since the incident was declared'));
    else
        status := 'done';
        evidence := case
            when v_entry.entry_id is null then 'declared less than 10 minutes ago'
            else format('last decision %s UTC: %s', to_char(v_entry.at at time zone 'UTC', 'HH24:MI:SS'), v_entry.body)
        end;
    end if;
    return next;
end
$$;

revoke all on function public.chat_get_v11_incident_checklist(bigint) from public;
grant execute on function public.chat_get_v11_incident_checklist(bigint) to chat_rollout_reader;
comment on function public.chat_get_v11_incident_checklist(bigint) is
'The on-call checklist of playbook section 11 for an incident, from facts in the database: each item done, '
'not done or n/a with its evidence, plus the IC''s 10-minute decision cadence (overdue when missed). Read-only.';

-- >>> sql/0890_function_chat_close_v11_incident.sql
-- Closes a resolved incident, only while its exit criteria still hold (checked again now: a relapse after
-- resolved blocks the close) and with a complete postmortem.
create or replace function public.chat_close_v11_incident(p_incident_id bigint, p_reason text)
returns table (incident_id bigint, severity text, status text, closed_at timestamptz)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_reason text := chat_v11.checked_reason(p_reason);
    v_incident chat_v11.incident;
    v_now timestamptz;
    v_failures text[];
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
begin
    perform chat_v11.begin_write('chat_close_v11_incident');
    -- lock order: the state row, then the incident row; a guardrail run deciding now is seen by the re-check
    perform chat_v11.lock_state();
    v_incident := chat_v11.incident_for_change(p_incident_id);
    v_now := clock_timestamp();
    if v_incident.status <> 'resolved' then
        raise exception using
            errcode = 'RO032',
            message = format('incident %s cannot be closed: it is %s, not resolved', p_incident_id, v_incident.status),
            detail = 'An incident is closed after it is resolved (its exit criteria held).',
            hint = format('Resolve it first: chat_set_v11_incident_status(%s, ''resolved'', reason).', p_incident_id);
    end if;
    -- GUARD: the exit criteria of its severity, again at close time (the same check as the resolve)
    v_failures := chat_v11.incident_exit_failures(v_incident.severity, v_now);
    if cardinality(v_failures) > 0 then
        raise exception using
            errcode = 'RO037',
            message = format('incident %s cannot be closed: its %s exit criteria fail now (they held when it was '
                             'resolved at %s UTC)', p_incident_id, v_incident.severity,
                             to_char(v_incident.resolved_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS')),
            detail = array_to_string(v_failures, '; '),
            hint = format('A relapse: reopen it with chat_set_v11_incident_status(%s, ''open'', reason), keep the '
                          || 'kill switch on (P0) and promotion frozen, mitigate, and resolve again once the exit '
                          || 'criteria hold (chat_get_v11_gate_checks()).', p_incident_id);
    end if;
    if v_incident.postmortem is null or cardinality(chat_v11.postmortem_problems(v_incident.postmortem)) > 0 then
        raise exception using
            errcode = 'RO034',
            message = format('incident %s cannot be closed without its postmortem', p_incident_id),
            detail = 'The playbook requires a postmortem (section 10): timeline, root cause, what worked and what '
                || 'did not, action items with owners and deadlines, decision log.',
            hint = format('Store it with chat_put_v11_postmortem(%s, ''{...}'').', p_incident_id);
    end if;
    update chat_v11.incident as i set status = 'closed', closed_at = v_now where i.incident_id = p_incident_id;
    perform chat_v11.incident_log(p_incident_id, 'status', format('status resolved -> closed: %s', v_reason),
                                  jsonb_build_object('from', 'resolved', 'to', 'closed'));
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    return query select v_incident.incident_id, v_incident.severity, 'closed'::text, v_now;
end
$$;

revoke all on function public.chat_close_v11_incident(bigint, text) from public;
grant execute on function public.chat_close_v11_incident(bigint, text) to chat_rollout_operator;
comment on function public.chat_close_v11_incident(bigint, text) is
'Close a resolved incident; refused (RO032) before it is resolved, (RO037) while its exit criteria fail now '
'(checked again at close: a relapse after resolved blocks it) and (RO034) without a complete postmortem.';
