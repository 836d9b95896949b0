-- >>> sql/0005_default_privileges.sql
-- Functions the migration role creates later in this database are not executable by PUBLIC by default
-- (the built-in default grants EXECUTE to PUBLIC; a per-schema default cannot revoke it, only this one can).
alter default privileges revoke execute on functions from public;

-- >>> sql/0305_function_begin_write.sql
-- Every writing API function starts here: on a hot standby it refuses with 25006 and words an operator
-- understands; on the primary it makes the transaction commit durably (synchronous_commit on until it ends).
create or replace function chat_v11.begin_write(p_what text)
returns void
language plpgsql
volatile
as $$
begin
    if pg_catalog.pg_is_in_recovery() then
        raise exception using
            errcode = 'read_only_sql_transaction',
            message = format('%s must run on the primary: this server is a read-only hot standby', p_what),
            detail = 'Every chat_get_v11_* function answers here; state changes, metric writes, incidents and '
                || 'configuration go to the primary.',
            hint = 'Connect to the primary (or the promoted standby) and repeat the call.';
    end if;
    perform pg_catalog.set_config('synchronous_commit', 'on', true);
end
$$;

revoke all on function chat_v11.begin_write(text) from public;
comment on function chat_v11.begin_write(text) is
'Refuses a write on a hot standby (25006, with detail and hint) and makes the transaction commit durably.';

-- >>> sql/0306_function_shown.sql
-- An argument as a refusal quotes it: quoted, at most 100 characters (the length said), or null.
create or replace function chat_v11.shown(p_value text)
returns text
language sql
immutable
as $$
    select coalesce(
        case
            when pg_catalog.char_length(p_value) > 100
                then pg_catalog.quote_literal(pg_catalog.left(p_value, 100))
                    || format('... (%s characters)', pg_catalog.char_length(p_value))
            else pg_catalog.quote_literal(p_value)
        end,
        'null'
    )
$$;

revoke all on function chat_v11.shown(text) from public;
comment on function chat_v11.shown(text) is
'Quotes an argument for a message: at most 100 characters with the full length said, or null.';

-- >>> sql/0310_function_checked_reason.sql
-- Validates a reason (required, trimmed, 1-500 characters, any Unicode) and returns it trimmed.
create or replace function chat_v11.checked_reason(p_reason text)
returns text
language plpgsql
stable
as $$
declare
    v_reason text := pg_catalog.regexp_replace(
        p_reason,
        '^[[:space:]\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]+'
        || '|[[:space:]\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]+$',
        '', 'g'
    );
begin
    if v_reason is null or v_reason = '' or pg_catalog.char_length(v_reason) > 500 then
        raise exception using
            errcode = 'RO001',
            message = 'a reason is required: 1 to 500 characters after trimming',
            detail = case
                when p_reason is null then 'The reason is null.'
                when v_reason = '' then 'The reason is empty or only white space.'
                else format('The reason has %s characters.', pg_catalog.char_length(v_reason))
            end,
            hint = 'Say why in a few words, for example ''incident P0'' or ''hold''; the reason is kept in the history.';
    end if;
    return v_reason;
end
$$;

revoke all on function chat_v11.checked_reason(text) from public;
comment on function chat_v11.checked_reason(text) is
'Returns the trimmed reason or raises RO001 when it is missing, blank or longer than 500 characters.';

-- >>> sql/0315_function_call_action.sql
-- What a chat_set_v11_rollout_state call means for a given state: kill, resume, hold, rollback, promote,
-- or unknown (a stage that is not in the catalog, without the kill switch).
create or replace function chat_v11.call_action(
    p_stage text, p_kill_switch boolean, p_target_stage text, p_target_kill_switch boolean
)
returns text
language sql
stable
as $$
    select case
        when p_target_kill_switch then 'kill'
        when t.ordinal is null then 'unknown'
        when p_kill_switch then 'resume'
        when t.ordinal = c.ordinal then 'hold'
        when t.ordinal < c.ordinal then 'rollback'
        else 'promote'
    end
      from (select 1) as one
      left join chat_v11.stage as c on c.stage = p_stage
      left join chat_v11.stage as t on t.stage = p_target_stage
$$;

revoke all on function chat_v11.call_action(text, boolean, text, boolean) from public;
comment on function chat_v11.call_action(text, boolean, text, boolean) is
'The meaning (kill, resume, hold, rollback, promote, unknown) of a state call for a given current state.';

-- >>> sql/0375_function_sample_problem.sql
-- What is wrong with one typed metric sample, or no row when it may be stored (SPEC 4.4):
-- unknown metric (RO021), wrong cohort, negative or missing counts, numerator > denominator, NaN or
-- Infinity (RO022), bucket not aligned to 10 s (RO023), more than 5 minutes in the future (RO024).
create or replace function chat_v11.sample_problem(
    p_kind text,
    p_metric text,
    p_cohort text,
    p_bucket_start timestamptz,
    p_numerator bigint,
    p_denominator bigint,
    p_value double precision,
    p_now timestamptz
)
returns table (code text, problem text)
language sql
stable
as $$
    select pg_catalog.split_part(v.verdict, ':', 1), pg_catalog.substr(v.verdict, 7)
      from (
          select case
              when p_kind is null then 'RO021:unknown metric ' || chat_v11.shown(p_metric)
              when p_cohort is null or p_cohort not in ('canary', 'control')
                  then 'RO022:cohort must be "canary" or "control"'
              when p_bucket_start is null then 'RO022:bucket_start is missing'
              when p_bucket_start in ('infinity', '-infinity') then 'RO022:bucket_start must be a finite timestamp'
              when p_numerator < 0 or p_denominator < 0 then 'RO022:negative count'
              when p_kind = 'rate' and (p_numerator is null or p_denominator is null)
                  then 'RO022:a rate needs numerator and denominator'
              when p_kind = 'rate' and p_numerator > p_denominator
                  then 'RO022:numerator is greater than denominator'
              when p_kind = 'count' and p_numerator is null then 'RO022:a count needs numerator'
              when p_kind = 'latency_ms' and p_value is null then 'RO022:a latency needs value (milliseconds)'
              when p_value in ('NaN', 'Infinity', '-Infinity') then 'RO022:value must be a finite number'
              when p_value < 0 or p_value > 1e12 then 'RO022:value must be between 0 and 1e12'
              when pg_catalog.date_trunc('second', p_bucket_start) <> p_bucket_start
                   or extract(second from p_bucket_start)::integer % 10 <> 0
                  then 'RO023:bucket_start is not aligned to 10 seconds'
              when p_bucket_start > p_now + interval '5 minutes'
                  then 'RO024:bucket_start is more than 5 minutes in the future'
          end as verdict
      ) as v
     where v.verdict is not null
$$;

revoke all on function chat_v11.sample_problem(
    text,
    text,
    text,
    timestamptz,
    bigint,
    bigint,
    double precision,
    timestamptz
) from public;
comment on function chat_v11.sample_problem(
    text,
    text,
    text,
    timestamptz,
    bigint,
    bigint,
    double precision,
    timestamptz
) is
'The SQLSTATE and problem of one typed ingestion sample, or no row when it may be stored.';

-- >>> sql/0393_function_checked_severity.sql
-- Validates an incident severity (playbook section 2) and returns it.
create or replace function chat_v11.checked_severity(p_severity text)
returns text
language plpgsql
immutable
as $$
begin
    if p_severity is null or p_severity not in ('P0', 'P1', 'P2') then
        raise exception using
            errcode = 'RO031',
            message = format('unknown severity %s', chat_v11.shown(p_severity)),
            detail = 'P0: write path lost or stuck, ACK -> receipt broken; P1: recovery/resync degraded without '
                || 'integrity loss; P2: version, schema or local errors without mass impact (playbook section 2).',
            hint = 'Pass ''P0'', ''P1'' or ''P2''.';
    end if;
    return p_severity;
end
$$;

revoke all on function chat_v11.checked_severity(text) from public;
comment on function chat_v11.checked_severity(text) is
'Returns the severity (P0, P1 or P2) or raises RO031.';

-- >>> sql/0500_function_state_lockers.sql
-- Describes the backends that hold (or queue ahead of us for) the rollout state row or table.
create or replace function chat_v11.state_lockers()
returns text
language plpgsql
volatile
as $$
declare
    v_xmax xid;
    v_lockers text;
begin
    -- the row's locker, if the table itself can be read (an ACCESS EXCLUSIVE holder forbids even that)
    perform pg_catalog.set_config('lock_timeout', '50ms', true);
    begin
        select s.xmax into v_xmax from chat_v11.rollout_state as s;
    exception when lock_not_available then
        v_xmax := null;
    end;

    with lockers as (
        select l.pid, l.granted, l.mode, l.locktype
          from pg_catalog.pg_locks as l
         where l.locktype = 'transactionid'
           and l.mode = 'ExclusiveLock'
           and l.granted
           and l.transactionid in (select h.x from chat_v11.xmax_holders(v_xmax) as h (x))
           and l.pid <> pg_catalog.pg_backend_pid()
        union
        select l.pid, l.granted, l.mode, l.locktype
          from pg_catalog.pg_locks as l
         where l.locktype = 'relation'
           and l.relation = 'chat_v11.rollout_state'::regclass
           and l.mode in ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
           and l.pid <> pg_catalog.pg_backend_pid()
    ),
    queue as (
        -- what a queued locker waits behind (a long reader ahead of a DDL): the real cause
        select b.pid, true as granted, 'ahead of pid ' || k.pid as mode, 'blocker' as locktype
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
            'pid %s (%s%s, user %s, application %s, %s since %s UTC, query: %s)',
            k.pid,
            case when k.locktype = 'blocker' then 'holds a lock ' when k.granted then 'holds ' else 'waits for ' end,
            case
                when k.locktype = 'transactionid' then 'the state row'
                when k.locktype = 'blocker' then k.mode
                else k.mode || ' on the state table'
            end,
            coalesce(a.usename::text, '?'),
            coalesce(nullif(a.application_name, ''), '?'),
            coalesce(a.state, '?'),
            coalesce(pg_catalog.to_char(coalesce(a.xact_start, a.state_change) at time zone 'UTC',
                                        'YYYY-MM-DD HH24:MI:SS'), '?'),
            coalesce(pg_catalog.left(pg_catalog.regexp_replace(a.query, '[[:space:]]+', ' ', 'g'), 120), '?')
        ),
        '; ' order by k.pid
    )
      into v_lockers
      from everyone as k
      left join pg_catalog.pg_stat_activity as a on a.pid = k.pid;
    return v_lockers;
end
$$;

revoke all on function chat_v11.state_lockers() from public;
comment on function chat_v11.state_lockers() is
'Human-readable list of the backends holding or queuing for the rollout state lock (pid, user, query).';

-- >>> sql/0505_function_raise_state_locked.sql
-- Raises RO010 for a state call that waited the state_lock_timeout policy in vain, naming the blockers.
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
            || 'A stuck session (idle in transaction): end it with SELECT pg_terminate_backend(<pid>).';
end
$$;

revoke all on function chat_v11.raise_state_locked(interval) from public;
comment on function chat_v11.raise_state_locked(interval) is
'Raises RO010 (the rollout state is locked by another session) naming the blocking backends.';

-- >>> sql/0508_function_peek_state.sql
-- The state as a call sees it before it waits for the state row (stage, kill switch, version), read under
-- the state_lock_timeout bound: behind an ACCESS EXCLUSIVE holder it fails fast with RO010, never hangs.
create or replace function chat_v11.peek_state()
returns table (stage text, kill_switch boolean, version bigint)
language plpgsql
volatile
as $$
#variable_conflict use_column
declare
    v_timeout interval := coalesce(chat_v11.policy_interval('state_lock_timeout'), interval '2 seconds');
begin
    perform pg_catalog.set_config(
        'lock_timeout', (ceil(extract(epoch from v_timeout) * 1000))::bigint::text, true
    );
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
-- Bounds this transaction's lock waits by the state_lock_timeout policy, then locks the state row.
-- On timeout raises RO010 naming the blocking backends: a state call never hangs.
-- Call it first: a caller that declares a chat_v11.rollout_state variable already waited for the
-- table's rowtype (an AccessShareLock taken at block entry) with no bound. The caller restores lock_timeout.
create or replace function chat_v11.lock_state()
returns chat_v11.rollout_state
language plpgsql
volatile
as $$
declare
    v_state record;
    v_timeout interval := coalesce(chat_v11.policy_interval('state_lock_timeout'), interval '2 seconds');
begin
    perform chat_v11.begin_write('a rollout state change');
    perform pg_catalog.set_config(
        'lock_timeout', (ceil(extract(epoch from v_timeout) * 1000))::bigint::text, true
    );
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
'Bounds lock waits by state_lock_timeout and locks the rollout state row, or raises RO010 naming the blocker.';

-- >>> sql/0540_function_auto_kill.sql
-- The P0 guardrail. When a P0 check fails at p_at: an active P1/P2 incident escalates to P0 (playbook
-- section 7) with the evidence; with the auto_kill policy on and the kill switch off, the kill switch is
-- engaged (action auto_kill, actor guardrail) under a P0 incident, opened if none is active. All in the
-- caller's transaction. Returns the new state version, or null when the rollout was not changed.
create or replace function chat_v11.auto_kill(p_at timestamptz, p_source text)
returns bigint
language plpgsql
volatile
as $$
declare
    v_state record;
    v_failing text[];
    v_evidence jsonb;
    v_incident chat_v11.incident;
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
    v_auto := coalesce((select (p.value #>> '{}')::boolean from chat_v11.policy as p where p.key = 'auto_kill'), true);
    -- the state lock first: racing writers and guardrail runs decide one after the other (one incident)
    v_state := chat_v11.lock_state();

    -- INCIDENT: escalate the active incident to P0, or declare one for the automatic kill
    select i.* into v_incident
      from chat_v11.incident as i
     where i.status in ('open', 'mitigated')
     order by i.severity, i.opened_at
     limit 1
       for update;
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
'P0 guardrail: on a failing P0 check, escalates the active incident to P0 and, with auto_kill on, engages the '
'kill switch (auto_kill, actor guardrail) under a P0 incident; returns the new state version or null.';

-- >>> sql/0560_function_put_samples.sql
-- Validates and stores a batch of typed samples (parallel arrays, position = sample number), all or
-- nothing; then judges any P0 event of the batch at once (chat_v11.auto_kill). Returns the count written.
create or replace function chat_v11.put_samples(
    p_metric text[],
    p_cohort text[],
    p_bucket_start timestamptz[],
    p_numerator bigint[],
    p_denominator bigint[],
    p_value double precision[]
)
returns integer
language plpgsql
volatile
as $$
declare
    v_now timestamptz := pg_catalog.clock_timestamp();
    v_total integer := coalesce(pg_catalog.cardinality(p_metric), 0);
    v_bad record;
    v_written integer;
    v_evidence timestamptz;
begin
    perform chat_v11.begin_write('chat_put_v11_metric_samples');
    -- VALIDATE: the first bad sample by position, then a bucket sent twice
    select x.ord, p.code, p.problem,
           pg_catalog.json_build_object('metric', x.metric, 'cohort', x.cohort, 'bucket_start', x.bucket_start,
                                        'numerator', x.numerator, 'denominator', x.denominator,
                                        'value', x.value)::text as sample
      into v_bad
      from unnest(p_metric, p_cohort, p_bucket_start, p_numerator, p_denominator, p_value)
               with ordinality as x (metric, cohort, bucket_start, numerator, denominator, value, ord)
      left join chat_v11.metric as m on m.metric = x.metric
     cross join lateral chat_v11.sample_problem(
         m.kind, x.metric, x.cohort, x.bucket_start, x.numerator, x.denominator, x.value, v_now
     ) as p
     order by x.ord
     limit 1;
    if v_bad.ord is null then
        select d.ord, 'RO025' as code,
               format('it repeats metric, cohort and bucket_start of sample %s', d.first_ord) as problem,
               pg_catalog.json_build_object('metric', d.metric, 'cohort', d.cohort,
                                            'bucket_start', d.bucket_start)::text as sample
          into v_bad
          from (
              select x.ord, x.metric, x.cohort, x.bucket_start,
                     pg_catalog.min(x.ord) over (partition by x.metric, x.cohort, x.bucket_start) as first_ord
                from unnest(p_metric, p_cohort, p_bucket_start) with ordinality as x (metric, cohort, bucket_start, ord)
          ) as d
         where d.ord <> d.first_ord
         order by d.ord
         limit 1;
    end if;
    if v_bad.ord is not null then
        perform chat_v11.reject_sample(v_bad.ord, v_total, v_bad.code, v_bad.problem, v_bad.sample);
    end if;

    -- WRITE: idempotent, a re-sent bucket replaces the stored one
    insert into chat_v11.metric_sample as s (metric, cohort, bucket_start, numerator, denominator, value)
    select x.metric, x.cohort, x.bucket_start, x.numerator, x.denominator, x.value
      from unnest(p_metric, p_cohort, p_bucket_start, p_numerator, p_denominator, p_value)
               as x (metric, cohort, bucket_start, numerator, denominator, value)
     order by x.metric, x.cohort, x.bucket_start  -- key order: concurrent batches never deadlock
        on conflict (metric, cohort, bucket_start) do update
       set numerator = excluded.numerator,
           denominator = excluded.denominator,
           value = excluded.value,
           written_at = excluded.written_at;
    get diagnostics v_written = row_count;

    -- GUARD: a P0 event in this batch is judged now, at the newest bucket that carries one
    select pg_catalog.max(x.bucket_start)
      into v_evidence
      from unnest(p_metric, p_bucket_start, p_numerator) as x (metric, bucket_start, numerator)
      join chat_v11.metric as m on m.metric = x.metric
     where m.severity = 'P0' and x.numerator > 0;
    if v_evidence is not null then
        perform chat_v11.auto_kill(v_evidence, 'ingestion');
    end if;
    return v_written;
end
$$;

revoke all on function chat_v11.put_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[]
) from public;
comment on function chat_v11.put_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[]
) is
'Validates and stores typed samples all or nothing (a bad sample raises RO021-RO025 naming its position), '
'then judges P0 events of the batch at once (auto_kill). Returns the number of samples written.';

-- >>> sql/0640_function_chat_set_v11_rollout_state.sql
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
    v_seen record;
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
    v_exit_failures text[];
begin
    perform chat_v11.begin_write('chat_set_v11_rollout_state');
    if p_kill_switch is null then
        raise exception using
            errcode = 'RO011',
            message = 'p_kill_switch must be true or false',
            detail = 'A null kill switch does not say whether to stop or to resume.',
            hint = 'Pass true to engage the kill switch, false to hold, roll back, promote or resume.';
    end if;

    select p.* into v_seen from chat_v11.peek_state() as p;
    v_state := chat_v11.lock_state();
    v_now := pg_catalog.clock_timestamp();
    -- GUARD: another call changed the state while this one waited, and this call now means something else
    -- (nested, so a kill plans nothing but what it needs: it stays correct across a migration it waited for)
    if not p_kill_switch and v_state.version <> v_seen.version then
        if chat_v11.call_action(v_seen.stage, v_seen.kill_switch, p_stage, false)
           <> chat_v11.call_action(v_state.stage, v_state.kill_switch, p_stage, false) then
            raise exception using
                errcode = 'RO017',
                message = format('the rollout changed while this call waited: (%s, false) would now be a %s, not a %s',
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
            v_exit_failures := chat_v11.p0_exit_failures(v_now);
            if pg_catalog.cardinality(v_exit_failures) > 0 then
                raise exception using
                    errcode = 'RO007',
                    message = 'resume refused: the P0 exit criteria do not hold over the exit window',
                    detail = array_to_string(v_exit_failures, '; '),
                    hint = format('Keep the kill switch on until every P0 check has passed for %s with samples '
                                  'covering it (policy p0_exit_window); watch chat_get_v11_gate_checks().',
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
-- Changes a stage's traffic percent and minimum observation window (null keeps the current value).
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
    v_old chat_v11.stage;
    v_new chat_v11.stage;
    v_lower numeric;
    v_upper numeric;
begin
    perform chat_v11.begin_write('chat_set_v11_stage_settings');
    select s.* into v_old from chat_v11.stage as s where s.stage = p_stage for update;
    if not found then
        raise exception using
            errcode = 'RO002',
            message = format('unknown stage %s', chat_v11.shown(p_stage)),
            detail = format('Known stages, in order: %s.',
                            (select string_agg(s.stage, ', ' order by s.ordinal) from chat_v11.stage as s)),
            hint = 'Name one of the known stages.';
    end if;
    if p_traffic_percent = 'NaN'::numeric or p_traffic_percent not between 0 and 100 then
        raise exception using
            errcode = 'RO015',
            message = format('traffic percent %s is not valid for stage %s', p_traffic_percent, p_stage),
            detail = 'A traffic percent is between 0 and 100.',
            hint = 'Traffic grows along the stage order; change the neighbouring stages first.';
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
    if v_new.min_observation < interval '0' then
        raise exception using
            errcode = 'RO015',
            message = format('minimum observation %s is not valid for stage %s', v_new.min_observation, p_stage),
            detail = 'The observation window is a duration of zero or more.',
            hint = 'Pass an interval such as ''30 minutes'' (or ''0'' for no waiting).';
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
'observation window (>= 0); null keeps the current value. Every change is audited in chat_v11.config_change.';

-- >>> sql/0680_function_chat_set_v11_policy.sql
-- Changes a rollout policy (auto_kill, p0_exit_window, state_lock_timeout, retention), validated per key.
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
            v_problem := case
                when p_key = 'p0_exit_window' and v_interval not between interval '30 minutes' and interval '60 minutes'
                    then 'p0_exit_window must be between 30 and 60 minutes (playbook section 5)'
                when p_key = 'state_lock_timeout' and v_interval not between interval '1 millisecond' and interval '1 minute'
                    then 'state_lock_timeout must be between 1 millisecond and 1 minute'
                when p_key = 'retention' and v_interval < interval '1 day'
                    then 'retention must be at least 1 day'
            end;
        end if;
    end if;
    if v_problem is not null then
        raise exception using
            errcode = 'RO014',
            message = format('invalid value %s for policy %s', chat_v11.shown(p_value::text), p_key),
            detail = v_problem || '.',
            hint = format('Current value: %s.', v_old.value);
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
'"30 minutes"), state_lock_timeout (default "2 seconds"), retention (default "30 days"). Audited.';

-- >>> sql/0690_function_chat_set_v11_metric_rule.sql
-- Changes the rule of one metric check: window, freshness, min_volume, factor, slack, threshold, alpha,
-- static_baseline (null clears it). Unknown keys and invalid values are refused; every change is audited.
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
        if exists (
            select from chat_v11.metric as m
             where m.metric = p_metric
               and ('NaN' in (m.min_volume, m.factor, m.slack, m.threshold, m.alpha, m.static_baseline)
                    or (m.severity = 'P0' and m.rule = 'zero' and m.threshold <> 0)
                    or m.window_length > interval '1 day' or m.freshness > m.window_length)
        ) then
            raise exception using errcode = 'check_violation', message = 'out of range';
        end if;
    exception when data_exception or check_violation or not_null_violation then
        raise exception using
            errcode = 'RO016',
            message = format('invalid metric rule for %s: %s', p_metric, chat_v11.shown(p_settings::text)),
            detail = format('%s. window and freshness are intervals (freshness <= window <= 1 day); min_volume, '
                            'factor (>= 1), slack (>= 0), threshold, alpha (0 to 0.5) and static_baseline (>= 0) '
                            'are numbers; a P0 exactly-zero rule keeps threshold 0.', sqlerrm),
            hint = 'Nothing was changed; send valid values.';
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
'threshold, alpha, static_baseline (null clears a static baseline). Unknown keys and invalid values are refused '
'(RO016); every change is audited.';

-- >>> sql/0700_function_chat_put_v11_metric_samples.sql
-- Writes metric samples (a JSON array), all or nothing; a re-sent bucket replaces the stored one.
-- A P0 event in the batch is judged in the same transaction: with auto_kill on, a failing P0 check
-- engages the kill switch before this call returns.
create or replace function public.chat_put_v11_metric_samples(p_samples jsonb)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
declare
    v_bad record;
    v_total integer;
    v_metric text[];
    v_cohort text[];
    v_bucket timestamptz[];
    v_numerator bigint[];
    v_denominator bigint[];
    v_value double precision[];
begin
    perform chat_v11.begin_write('chat_put_v11_metric_samples');
    if p_samples is null or pg_catalog.jsonb_typeof(p_samples) is distinct from 'array' then
        raise exception using
            errcode = 'RO020',
            message = 'p_samples must be a JSON array of sample objects',
            detail = format('Got %s.', coalesce(pg_catalog.jsonb_typeof(p_samples), 'null')),
            hint = 'Pass [{"metric": ..., "cohort": "canary", "bucket_start": "2026-11-26T10:00:10Z", '
                || '"numerator": 0, "denominator": 1200}, ...].';
    end if;
    v_total := pg_catalog.jsonb_array_length(p_samples);

    -- VALIDATE the JSON shape: the first sample whose fields cannot be read
    select e.ord, p.code, p.problem, e.sample::text as sample
      into v_bad
      from pg_catalog.jsonb_array_elements(p_samples) with ordinality as e (sample, ord)
     cross join lateral chat_v11.sample_shape_problem(e.sample) as p
     order by e.ord
     limit 1;
    if v_bad.ord is not null then
        perform chat_v11.reject_sample(v_bad.ord, v_total, v_bad.code, v_bad.problem, v_bad.sample);
    end if;

    -- READ the fields into typed arrays (a date such as 2026-13-45 passes the pattern but not the cast)
    begin
        select array_agg(x.metric order by e.ord), array_agg(x.cohort order by e.ord),
               array_agg(x.bucket_start order by e.ord), array_agg(x.numerator order by e.ord),
               array_agg(x.denominator order by e.ord), array_agg(x.value order by e.ord)
          into v_metric, v_cohort, v_bucket, v_numerator, v_denominator, v_value
          from pg_catalog.jsonb_array_elements(p_samples) with ordinality as e (sample, ord)
         cross join lateral pg_catalog.jsonb_to_record(e.sample) as x (
             metric text, cohort text, bucket_start timestamptz, numerator bigint, denominator bigint,
             value double precision
         );
    exception when data_exception then
        select e.ord, e.sample::text as sample
          into v_bad
          from pg_catalog.jsonb_array_elements(p_samples) with ordinality as e (sample, ord)
         where not chat_v11.is_timestamptz(e.sample ->> 'bucket_start')
         order by e.ord
         limit 1;
        perform chat_v11.reject_sample(coalesce(v_bad.ord, 0), v_total, 'RO022',
                                       'bucket_start is not a valid timestamp', coalesce(v_bad.sample, ''));
    end;
    return chat_v11.put_samples(v_metric, v_cohort, v_bucket, v_numerator, v_denominator, v_value);
end
$$;

revoke all on function public.chat_put_v11_metric_samples(jsonb) from public;
grant execute on function public.chat_put_v11_metric_samples(jsonb) to chat_rollout_ingest;
comment on function public.chat_put_v11_metric_samples(jsonb) is
'Metric writers: store 10-second samples [{metric, cohort, bucket_start, numerator, denominator, value}], '
'all or nothing (a bad sample is named with a project SQLSTATE), a re-sent bucket replaces the old one. A P0 '
'event is judged in the same transaction: with auto_kill on, a failing P0 check engages the kill switch. '
'Returns the number of samples written. The columnar overload (arrays) is the fast bulk path.';

-- >>> sql/0705_function_chat_put_v11_metric_samples_columnar.sql
-- The fast bulk path: the same ingestion with one array per field (position = sample number), so a
-- writer sends binary arrays (psycopg adapts Python lists) instead of JSON text. Same rules, same guard.
create or replace function public.chat_put_v11_metric_samples(
    p_metric text[],
    p_cohort text[],
    p_bucket_start timestamptz[],
    p_numerator bigint[],
    p_denominator bigint[],
    p_value double precision[]
)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
declare
    v_n integer := coalesce(pg_catalog.cardinality(p_metric), 0);
begin
    perform chat_v11.begin_write('chat_put_v11_metric_samples');
    if p_metric is null
       or coalesce(pg_catalog.cardinality(p_cohort), -1) <> v_n
       or coalesce(pg_catalog.cardinality(p_bucket_start), -1) <> v_n
       or coalesce(pg_catalog.cardinality(p_numerator), v_n) <> v_n
       or coalesce(pg_catalog.cardinality(p_denominator), v_n) <> v_n
       or coalesce(pg_catalog.cardinality(p_value), v_n) <> v_n
       or pg_catalog.array_ndims(p_metric) > 1 then
        raise exception using
            errcode = 'RO020',
            message = 'the sample arrays must be one-dimensional and of the same length',
            detail = format('metric %s, cohort %s, bucket_start %s, numerator %s, denominator %s, value %s elements.',
                            pg_catalog.cardinality(p_metric), pg_catalog.cardinality(p_cohort),
                            pg_catalog.cardinality(p_bucket_start), pg_catalog.cardinality(p_numerator),
                            pg_catalog.cardinality(p_denominator), pg_catalog.cardinality(p_value)),
            hint = 'Pass one element per sample in every array; numerator, denominator or value may be a null '
                || 'array when no sample has that field.';
    end if;
    return chat_v11.put_samples(p_metric, p_cohort, p_bucket_start, p_numerator, p_denominator, p_value);
end
$$;

revoke all on function public.chat_put_v11_metric_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[]
) from public;
grant execute on function public.chat_put_v11_metric_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[]
) to chat_rollout_ingest;
comment on function public.chat_put_v11_metric_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[]
) is
'Metric writers, fast bulk path: the same ingestion as the JSON form with one array per field (metric, cohort, '
'bucket_start, numerator, denominator, value; position = sample number). All or nothing, same SQLSTATEs, same '
'automatic kill.';

-- >>> sql/0710_function_chat_run_v11_guardrails.sql
-- The time-based guardrails, safe to run every few seconds (pg_cron or any scheduler), idempotent:
-- a P0 failure engages the kill switch, stale P0 data freezes promotion, old samples are pruned.
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
    v_retention interval := coalesce(chat_v11.policy_interval('retention'), interval '30 days');
    v_pruned bigint;
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

    -- RETENTION: samples older than the retention policy
    delete from chat_v11.metric_sample as s where s.bucket_start < v_now - v_retention;
    get diagnostics v_pruned = row_count;
    if v_pruned > 0 then
        return query select 'prune'::text, null::bigint,
                            format('%s samples older than %s removed', v_pruned, v_retention);
    end if;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
end
$$;

revoke all on function public.chat_run_v11_guardrails() from public;
grant execute on function public.chat_run_v11_guardrails() to chat_rollout_ingest;
comment on function public.chat_run_v11_guardrails() is
'Guardrails to run every few seconds (idempotent): a failing P0 check engages the kill switch (auto_kill), '
'stale or missing P0 data freezes promotion (hold, actor guardrail), samples older than the retention policy '
'are removed. Returns one row per action taken.';

-- >>> sql/0800_function_chat_open_v11_incident.sql
-- Declares an incident (playbook section 4, step 1): P0/P1 freeze promotion at once, P0 engages the kill switch.
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
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
begin
    perform chat_v11.begin_write('chat_open_v11_incident');
    perform chat_v11.checked_severity(p_severity);
    if p_severity in ('P0', 'P1') then
        perform chat_v11.lock_state();  -- lock order: the state row, then incident rows
    end if;
    insert into chat_v11.incident (severity, summary, opened_actor)
    values (p_severity, v_summary, chat_v11.claimed_actor())
    returning * into v_incident;
    perform chat_v11.incident_log(v_incident.incident_id, 'opened',
                                  format('%s incident declared: %s', p_severity, v_summary), null);
    v_version := chat_v11.incident_rollout_effect(
        p_severity, pg_catalog.left(format('incident %s %s: %s', v_incident.incident_id, p_severity, v_summary), 500),
        null
    );
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    return query select v_incident.incident_id, v_incident.severity, v_incident.status, v_incident.summary,
                        v_incident.opened_at, v_incident.opened_by, v_version;
end
$$;

revoke all on function public.chat_open_v11_incident(text, text) from public;
grant execute on function public.chat_open_v11_incident(text, text) to chat_rollout_operator;
comment on function public.chat_open_v11_incident(text, text) is
'Declare an incident (P0, P1 or P2) with a summary. P0 and P1 freeze promotion at once; P0 also engages the '
'kill switch unless it is on (playbook section 4). Returns the incident and the rollout version it wrote.';

-- >>> sql/0820_function_chat_log_v11_incident.sql
-- The scribe's record: a fact, a decision, an action, the client fallback confirmed, or the root cause by layer.
create or replace function public.chat_log_v11_incident(p_incident_id bigint, p_kind text, p_text text)
returns table (entry_id bigint, incident_id bigint, at timestamptz, recorded_by text, kind text, body text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_text text := chat_v11.checked_reason(p_text);
    v_entry chat_v11.incident_entry;
    v_layer text;
begin
    perform chat_v11.begin_write('chat_log_v11_incident');
    perform chat_v11.incident_for_change(p_incident_id);
    if p_kind is null or p_kind not in ('fact', 'decision', 'action', 'fallback_confirmed', 'root_cause') then
        raise exception using
            errcode = 'RO031',
            message = format('unknown timeline entry kind %s', chat_v11.shown(p_kind)),
            detail = 'Kinds: fact, decision, action, fallback_confirmed (the client fallback is confirmed), '
                || 'root_cause (''layer: cause'', layer one of backend, frontend, sre, database, network).',
            hint = 'For example: chat_log_v11_incident(7, ''decision'', ''keep the kill switch on'').';
    end if;
    if p_kind = 'root_cause' then
        v_layer := lower(split_part(v_text, ':', 1));
        if v_layer not in ('backend', 'frontend', 'sre', 'database', 'network') or position(':' in v_text) = 0 then
            raise exception using
                errcode = 'RO031',
                message = 'a root cause names its layer first',
                detail = 'Layers: backend (commit path, idempotency, receipt emission), frontend (fallback state '
                    || 'machine, pending/drift), sre (lag, throttling, saturation), database, network.',
                hint = 'For example: ''backend: receipt not emitted for duplicate ACKs''.';
        end if;
    end if;
    v_entry := chat_v11.incident_log(p_incident_id, p_kind, v_text,
                                     case when v_layer is not null then jsonb_build_object('layer', v_layer) end);
    return query select v_entry.entry_id, v_entry.incident_id, v_entry.at, v_entry.recorded_by, v_entry.kind,
                        v_entry.body;
end
$$;

revoke all on function public.chat_log_v11_incident(bigint, text, text) from public;
grant execute on function public.chat_log_v11_incident(bigint, text, text) to chat_rollout_operator;
comment on function public.chat_log_v11_incident(bigint, text, text) is
'Append to an incident''s UTC timeline: fact, decision (the IC''s, every 10 minutes), action, fallback_confirmed, '
'or root_cause (''layer: cause''). Entries are never rewritten.';

-- >>> sql/0830_function_chat_set_v11_incident_role.sql
-- Names who fills a role of the incident (playbook section 3): IC, backend, SRE, frontend, scribe.
create or replace function public.chat_set_v11_incident_role(p_incident_id bigint, p_role text, p_person text)
returns table (entry_id bigint, incident_id bigint, at timestamptz, role text, person text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_person text := chat_v11.checked_reason(p_person);
    v_role text;
    v_entry chat_v11.incident_entry;
begin
    perform chat_v11.begin_write('chat_set_v11_incident_role');
    perform chat_v11.incident_for_change(p_incident_id);
    v_role := case lower(coalesce(p_role, ''))
        when 'ic' then 'IC' when 'backend' then 'backend' when 'sre' then 'SRE'
        when 'frontend' then 'frontend' when 'scribe' then 'scribe'
    end;
    if v_role is null then
        raise exception using
            errcode = 'RO031',
            message = format('unknown incident role %s', chat_v11.shown(p_role)),
            detail = 'Roles: IC, backend, SRE, frontend, scribe (playbook section 3).',
            hint = 'For example: chat_set_v11_incident_role(7, ''IC'', ''alice'').';
    end if;
    v_entry := chat_v11.incident_log(p_incident_id, 'role', format('%s: %s', v_role, v_person),
                                     jsonb_build_object('role', v_role, 'person', v_person));
    return query select v_entry.entry_id, v_entry.incident_id, v_entry.at, v_role, v_person;
end
$$;

revoke all on function public.chat_set_v11_incident_role(bigint, text, text) from public;
grant execute on function public.chat_set_v11_incident_role(bigint, text, text) to chat_rollout_operator;
comment on function public.chat_set_v11_incident_role(bigint, text, text) is
'Name who fills an incident role: IC, backend, SRE, frontend or scribe (the latest entry per role counts).';

-- >>> sql/0840_function_chat_set_v11_incident_severity.sql
-- Changes an incident's severity. Up to P0 or P1 applies that severity's effect on the rollout at once
-- (P1 freezes, P0 also engages the kill switch); the change and its reason go to the timeline.
create or replace function public.chat_set_v11_incident_severity(p_incident_id bigint, p_severity text, p_reason text)
returns table (incident_id bigint, severity text, previous_severity text, status text, rollout_version bigint)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_reason text := chat_v11.checked_reason(p_reason);
    v_incident chat_v11.incident;
    v_version bigint;
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
begin
    perform chat_v11.begin_write('chat_set_v11_incident_severity');
    perform chat_v11.lock_state();  -- lock order: the state row, then incident rows
    v_incident := chat_v11.incident_for_change(p_incident_id);
    perform chat_v11.checked_severity(p_severity);
    v_version := chat_v11.set_incident_severity(v_incident, p_severity, v_reason, null, null);
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    return query select v_incident.incident_id, p_severity, v_incident.severity, v_incident.status, v_version;
end
$$;

revoke all on function public.chat_set_v11_incident_severity(bigint, text, text) from public;
grant execute on function public.chat_set_v11_incident_severity(bigint, text, text) to chat_rollout_operator;
comment on function public.chat_set_v11_incident_severity(bigint, text, text) is
'Change an incident''s severity with a reason. Raising it to P1 freezes promotion, to P0 also engages the kill '
'switch (playbook sections 4 and 7). Recorded in the timeline.';

-- >>> sql/0850_function_chat_set_v11_incident_status.sql
-- Moves an incident: open -> mitigated -> resolved (only when its exit criteria hold), resolved -> open (reopen).
-- Closing is chat_close_v11_incident (it needs the postmortem).
create or replace function public.chat_set_v11_incident_status(p_incident_id bigint, p_status text, p_reason text)
returns table (incident_id bigint, severity text, status text, previous_status text, changed_at timestamptz)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_reason text := chat_v11.checked_reason(p_reason);
    v_incident chat_v11.incident;
    v_now timestamptz := clock_timestamp();
    v_failures text[];
begin
    perform chat_v11.begin_write('chat_set_v11_incident_status');
    v_incident := chat_v11.incident_for_change(p_incident_id);
    if p_status is null
       or (v_incident.status, p_status) not in (
           ('open', 'mitigated'), ('open', 'resolved'), ('mitigated', 'resolved'), ('resolved', 'open'),
           ('mitigated', 'open')
       ) then
        raise exception using
            errcode = 'RO032',
            message = format('incident %s cannot go from %s to %s', p_incident_id, v_incident.status,
                             chat_v11.shown(p_status)),
            detail = 'Statuses: open -> mitigated -> resolved -> closed; a resolved incident may be reopened.',
            hint = case when p_status = 'closed' then 'Close with chat_close_v11_incident(id, reason).'
                        else 'Pass mitigated, resolved or open.' end;
    end if;
    if p_status = 'resolved' then
        -- GUARD: the exit criteria of the incident's severity (playbook sections 5 and 6)
        v_failures := chat_v11.incident_exit_failures(v_incident.severity, v_now);
        if cardinality(v_failures) > 0 then
            raise exception using
                errcode = 'RO033',
                message = format('incident %s cannot be resolved: its %s exit criteria do not hold',
                                 p_incident_id, v_incident.severity),
                detail = array_to_string(v_failures, '; '),
                hint = 'Keep mitigating; resolve once the gates show the exit criteria (chat_get_v11_gate_checks()).';
        end if;
        perform chat_v11.incident_log(p_incident_id, 'exit_criteria',
                                      format('%s exit criteria hold', v_incident.severity),
                                      (select to_jsonb(g) from chat_v11.current_gates(v_now) as g));
    end if;
    update chat_v11.incident as i
       set status = p_status,
           mitigated_at = case when p_status = 'mitigated' then v_now else i.mitigated_at end,
           resolved_at = case when p_status = 'resolved' then v_now when p_status = 'open' then null
                              else i.resolved_at end
     where i.incident_id = p_incident_id;
    perform chat_v11.incident_log(p_incident_id, 'status',
                                  format('status %s -> %s: %s', v_incident.status, p_status, v_reason),
                                  jsonb_build_object('from', v_incident.status, 'to', p_status));
    return query select v_incident.incident_id, v_incident.severity, p_status, v_incident.status, v_now;
end
$$;

revoke all on function public.chat_set_v11_incident_status(bigint, text, text) from public;
grant execute on function public.chat_set_v11_incident_status(bigint, text, text) to chat_rollout_operator;
comment on function public.chat_set_v11_incident_status(bigint, text, text) is
'Move an incident: open -> mitigated -> resolved (refused with RO033 while the exit criteria of its severity '
'fail), or reopen a resolved one. Recorded in the timeline.';

-- >>> sql/0860_function_chat_snapshot_v11_incident.sql
-- Playbook section 4, step 2 in one call: stores the gates, the checks, the state and the last 50 history
-- rows in the incident's timeline.
create or replace function public.chat_snapshot_v11_incident(p_incident_id bigint)
returns table (entry_id bigint, incident_id bigint, at timestamptz, body text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_entry chat_v11.incident_entry;
    v_gates jsonb;
begin
    perform chat_v11.begin_write('chat_snapshot_v11_incident');
    perform chat_v11.incident_for_change(p_incident_id);
    select to_jsonb(g) into v_gates from public.chat_get_v11_release_gates() as g;
    v_entry := chat_v11.incident_log(
        p_incident_id, 'snapshot',
        format('SQL snapshot: gate_p0_ok=%s, gate_p1_ok=%s, rollout_decision=%s, stage %s, kill switch %s',
               v_gates ->> 'gate_p0_ok', v_gates ->> 'gate_p1_ok', v_gates ->> 'rollout_decision',
               v_gates ->> 'stage', v_gates ->> 'kill_switch'),
        jsonb_build_object(
            'release_gates', v_gates,
            'gate_checks', (select jsonb_agg(to_jsonb(c)) from public.chat_get_v11_gate_checks() as c),
            'rollout_state', (select to_jsonb(s) from public.chat_get_v11_rollout_state() as s),
            'rollout_history', (select jsonb_agg(to_jsonb(h)) from public.chat_get_v11_rollout_history(50) as h)
        )
    );
    return query select v_entry.entry_id, v_entry.incident_id, v_entry.at, v_entry.body;
end
$$;

revoke all on function public.chat_snapshot_v11_incident(bigint) from public;
grant execute on function public.chat_snapshot_v11_incident(bigint) to chat_rollout_operator;
comment on function public.chat_snapshot_v11_incident(bigint) is
'Take the SQL snapshot of playbook section 4 (release gates, gate checks, rollout state, history 50) into the '
'incident''s timeline.';

-- >>> sql/0870_function_chat_put_v11_postmortem.sql
-- Stores the incident's postmortem (playbook section 10), refused while anything required is missing.
create or replace function public.chat_put_v11_postmortem(p_incident_id bigint, p_postmortem jsonb)
returns table (incident_id bigint, status text, action_items integer, stored_at timestamptz)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_incident chat_v11.incident;
    v_problems text[];
    v_entry chat_v11.incident_entry;
begin
    perform chat_v11.begin_write('chat_put_v11_postmortem');
    v_incident := chat_v11.incident_for_change(p_incident_id);
    v_problems := chat_v11.postmortem_problems(p_postmortem);
    if cardinality(v_problems) > 0 then
        raise exception using
            errcode = 'RO035',
            message = format('the postmortem of incident %s is incomplete', p_incident_id),
            detail = array_to_string(v_problems, '; ') || '.',
            hint = 'Send {"timeline": [...], "root_cause": {"technical": ..., "process": ...}, "what_worked": [...], '
                || '"what_did_not_work": [...], "action_items": [{"kind": "test|alert|guardrail", "title": ..., '
                || '"owner": ..., "deadline": "YYYY-MM-DD"}], "decision_log": [...]}.';
    end if;
    update chat_v11.incident as i set postmortem = p_postmortem where i.incident_id = p_incident_id;
    v_entry := chat_v11.incident_log(
        p_incident_id, 'postmortem',
        format('postmortem stored with %s action items', jsonb_array_length(p_postmortem -> 'action_items')),
        p_postmortem
    );
    return query select p_incident_id, v_incident.status, jsonb_array_length(p_postmortem -> 'action_items'),
                        v_entry.at;
end
$$;

revoke all on function public.chat_put_v11_postmortem(bigint, jsonb) from public;
grant execute on function public.chat_put_v11_postmortem(bigint, jsonb) to chat_rollout_operator;
comment on function public.chat_put_v11_postmortem(bigint, jsonb) is
'Store an incident''s postmortem: timeline, root_cause {technical, process}, what_worked, what_did_not_work, '
'action_items [{kind test|alert|guardrail, title, owner, deadline}], decision_log. Incomplete: RO035.';

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
    elsif v_i.status in ('resolved', 'closed') then
        select e.* into v_entry from chat_v11.incident_entry as e
         where e.incident_id = p_incident_id and e.kind = 'exit_criteria' order by e.entry_id desc limit 1;
        status := 'done';
        evidence := format('held when resolved at %s UTC', to_char(v_i.resolved_at at time zone 'UTC', 'HH24:MI:SS'));
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
-- Closes a resolved incident, only with a complete postmortem.
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
    v_now timestamptz := clock_timestamp();
begin
    perform chat_v11.begin_write('chat_close_v11_incident');
    v_incident := chat_v11.incident_for_change(p_incident_id);
    if v_incident.status <> 'resolved' then
        raise exception using
            errcode = 'RO032',
            message = format('incident %s cannot be closed: it is %s, not resolved', p_incident_id, v_incident.status),
            detail = 'An incident is closed after it is resolved (its exit criteria held).',
            hint = format('Resolve it first: chat_set_v11_incident_status(%s, ''resolved'', reason).', p_incident_id);
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
    return query select v_incident.incident_id, v_incident.severity, 'closed'::text, v_now;
end
$$;

revoke all on function public.chat_close_v11_incident(bigint, text) from public;
grant execute on function public.chat_close_v11_incident(bigint, text) to chat_rollout_operator;
comment on function public.chat_close_v11_incident(bigint, text) is
'Close a resolved incident; refused (RO032) before it is resolved and (RO034) without a complete postmortem.';
