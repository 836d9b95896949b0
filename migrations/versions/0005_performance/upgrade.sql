-- >>> migrations/steps/0005_a_rollout_state_traffic_percent.sql
-- covers: sql/0130_table_rollout_state.sql
-- Revision 0005, the hot read path: the state row carries its stage's traffic percent (the last column, as in
-- sql/0130), so chat_v11_read.rollout_state reads one table. The table holds exactly one row and this script
-- already holds it in EXCLUSIVE mode (migrations/env.py), under lock_timeout: the column is added nullable,
-- filled from the stage catalog, then made NOT NULL (a scan of one row). The triggers that keep it right
-- (sql/0512, 0514, 0516, 0517) are created further down, before anything can write the row again.
-- ACCESS EXCLUSIVE first, before anything else of this revision: ALTER TABLE needs it. Still an upgrade of
-- migrations/env.py's EXCLUSIVE lock: a state call that passed its peek (AccessShareLock) and waits for the row
-- behind that EXCLUSIVE deadlocks with it (40P01) unless env.py takes ACCESS EXCLUSIVE itself (docs/design.md).
lock table chat_v11.rollout_state in access exclusive mode;

alter table chat_v11.rollout_state add column traffic_percent numeric(5, 2);

update chat_v11.rollout_state as s
   set traffic_percent = t.traffic_percent
  from chat_v11.stage as t
 where t.stage = s.stage;

-- squawk-ignore adding-not-nullable-field -- one row, filled just above, under the migration's lock
alter table chat_v11.rollout_state alter column traffic_percent set not null;

comment on column chat_v11.rollout_state.traffic_percent is
'The current stage''s traffic percent (chat_v11.stage), kept right by triggers; the hot read path reads it here.';

-- >>> migrations/steps/0005_b_metric_sample_partitioned_before.sql
-- Revision 0005, before sql/0160 creates the partitioned metric store: the unpartitioned table steps aside (its
-- rows move into the partitions in 0005_b_metric_sample_partitioned_after.sql, in the same transaction).
-- squawk-ignore renaming-table -- internal table, no client may read it (every read and write goes through functions)
alter table chat_v11.metric_sample rename to metric_sample_unpartitioned;
-- squawk-ignore renaming-object -- its index, freed for the partitioned table's primary key
alter index chat_v11.metric_sample_pkey rename to metric_sample_unpartitioned_pkey;

-- >>> sql/0015_schema_chat_v11_read.sql
-- Read-only views for the hot read path (SPEC 4: "a read-only view may be granted SELECT to the reader role
-- behind an API function"). Nothing but views lives here; only chat_rollout_reader (and its members) may use it.
create schema chat_v11_read;
revoke all on schema chat_v11_read from public;
grant usage on schema chat_v11_read to chat_rollout_reader;
comment on schema chat_v11_read is
'chat-rollout read-only views behind public.chat_get_v11_* functions (SELECT for chat_rollout_reader only).';

-- >>> sql/0135_view_rollout_state.sql
-- The hot read path's one relation: the state row, exactly the columns public.chat_get_v11_rollout_state()
-- returns, from the one table (traffic_percent is kept in the state row, no join). The view runs with its
-- owner's rights, so readers need no privilege on chat_v11; they may SELECT it, nothing else.
create view chat_v11_read.rollout_state as
select
    s.stage,
    s.traffic_percent,
    s.kill_switch,
    s.promotion_frozen,
    s.reason,
    s.changed_by,
    s.actor,
    s.changed_at,
    s.version
from chat_v11.rollout_state as s;

revoke all on chat_v11_read.rollout_state from public;
grant select on chat_v11_read.rollout_state to chat_rollout_reader;
comment on view chat_v11_read.rollout_state is
'Read-only: the rollout state now, for public.chat_get_v11_rollout_state() (SELECT for chat_rollout_reader only).';

-- >>> sql/0145_index_rollout_history_stage_change.sql
-- The history rows that changed the stage (init, promote, rollback, a kill or resume to another stage): the
-- observation window counts from the newest one (chat_v11.state_at), found with one probe of this partial index
-- instead of a walk over the whole history.
-- squawk-ignore require-concurrent-index-creation -- the history is small (one row per operator call) and the
-- migration runs in one transaction; the build holds its SHARE lock for milliseconds.
create index rollout_history_stage_change_idx on chat_v11.rollout_history (version)
where action = 'init' or from_stage is distinct from to_stage;

-- >>> sql/0160_table_metric_sample.sql
-- Metric samples: one 10-second bucket per (metric, cohort), replaced when re-sent (SPEC 4.4), partitioned by UTC
-- day on bucket_start: a gate window reads one or two partitions whatever the history holds, retention drops whole
-- days (chat_v11.prune_samples), partitions are created ahead (chat_v11.ensure_sample_partitions) and a default
-- partition takes any sample whose day has none, so no valid sample is ever refused.
create table chat_v11.metric_sample (
    metric text not null,
    cohort text not null,
    bucket_start timestamptz not null,
    numerator bigint,
    denominator bigint,
    value double precision,
    written_at timestamptz not null default pg_catalog.clock_timestamp(),
    constraint metric_sample_pkey primary key (metric, cohort, bucket_start),
    constraint metric_sample_cohort_valid check (cohort in ('canary', 'control')),
    constraint metric_sample_bucket_aligned check (
        pg_catalog.date_trunc('second', bucket_start) = bucket_start
        and extract(second from bucket_start)::integer % 10 = 0
    ),
    constraint metric_sample_counts_valid check (
        (numerator is null or numerator >= 0)
        and (denominator is null or denominator >= 0)
        and (numerator is null or denominator is null or numerator <= denominator)
    ),
    constraint metric_sample_value_valid check (
        value is null or (value >= 0 and value < 'Infinity'::double precision)
    )
) partition by range (bucket_start);

create table chat_v11.metric_sample_default partition of chat_v11.metric_sample default;

comment on table chat_v11.metric_sample is
'10-second metric buckets per cohort (canary = v1.1 traffic, control = the rest). '
'Write with public.chat_put_v11_metric_samples(); a re-sent bucket replaces the stored one. Partitioned by UTC day '
'(metric_sample_pYYYYMMDD, metric_sample_default).';
comment on table chat_v11.metric_sample_default is
'Samples of days without their own partition (backfills, clock skew); moved into a day''s partition when it is '
'created, pruned row by row by the retention policy.';

-- >>> sql/0330_function_state_at.sql
-- The rollout state in force at a moment, from the history (no row: before the first history row).
-- A moment at or after the transaction start sees the newest committed row.
create or replace function chat_v11.state_at(p_at timestamptz)
returns table (
    stage text,
    kill_switch boolean,
    promotion_frozen boolean,
    incident_id bigint,
    version bigint,
    stage_since timestamptz
)
language sql
stable
as $$
    select
        h.to_stage,
        h.to_kill_switch,
        h.promotion_frozen,
        h.incident_id,
        h.version,
        (
            -- the newest row that changed the stage, found through rollout_history_stage_change_idx (a partial
            -- index on exactly this predicate): one index probe, whatever the length of the history
            select s.changed_at
              from chat_v11.rollout_history as s
             where s.version <= h.version
               and (s.action = 'init' or s.from_stage is distinct from s.to_stage)
             order by s.version desc
             limit 1
        )
      from chat_v11.rollout_history as h
     where p_at >= pg_catalog.now() or h.changed_at <= p_at
     order by h.version desc
     limit 1
$$;

revoke all on function chat_v11.state_at(timestamptz) from public;
comment on function chat_v11.state_at(timestamptz) is
'Stage, kill switch, freeze, incident, version and stage start in force at p_at, read from the history.';

-- >>> sql/0360_function_cohort_window.sql
-- Aggregates of one metric and cohort over the buckets in (p_from, p_to], none older than p_floor. Inlined into
-- chat_v11.evaluate_checks; p_floor (the oldest bucket any check reads, a parameter there) lets the generic plan
-- prune every older partition of the metric store when the executor starts.
create or replace function chat_v11.cohort_window(
    p_metric text, p_cohort text, p_from timestamptz, p_to timestamptz, p_floor timestamptz
)
returns table (
    numerator numeric,
    denominator numeric,
    buckets bigint,
    newest timestamptz,
    oldest timestamptz,
    median_value double precision
)
language sql
stable
as $$
    select pg_catalog.sum(s.numerator)::numeric,
           pg_catalog.sum(s.denominator)::numeric,
           pg_catalog.count(*),
           pg_catalog.max(s.bucket_start),
           pg_catalog.min(s.bucket_start),
           pg_catalog.percentile_cont(0.5) within group (order by s.value)
      from chat_v11.metric_sample as s
     where s.metric = p_metric
       and s.cohort = p_cohort
       and s.bucket_start > p_from
       and s.bucket_start <= p_to
       and s.bucket_start > p_floor
$$;

revoke all on function chat_v11.cohort_window(text, text, timestamptz, timestamptz, timestamptz) from public;
comment on function chat_v11.cohort_window(text, text, timestamptz, timestamptz, timestamptz) is
'Sum of numerators and denominators, bucket count, newest/oldest bucket and median value of one metric '
'and cohort over (p_from, p_to], no bucket at or before p_floor (partition pruning).';

-- >>> sql/0400_function_evaluate_checks.sql
-- One row per release-gate check at p_at for a given stage and kill switch (SPEC 4.5).
-- Samples count when bucket_start is in (p_at - window, p_at]. p_p0_window, when given, replaces the
-- P0 windows (the exit window of a resume). Missing, stale or thin data never passes.
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
language plpgsql
stable
-- the window queries always want the (metric, cohort, bucket_start) index: a generic plan is right, and
-- re-planning them on every call (custom plans) would make the cost grow with the history kept
set plan_cache_mode = force_generic_plan
-- the cost estimate of the 18 range scans can pass jit_above_cost; compiling costs far more than it saves
set jit = off
as $$
#variable_conflict use_column
declare
    m record;
    v_window interval;
    v_floor timestamptz;
    v_events numeric;
    v_den numeric;
    v_buckets bigint;
    v_fresh boolean;
    v_c_fresh boolean;
    v_b_fresh boolean;
    v_c_rate numeric;
    v_b_rate numeric;
    v_limit numeric;
    v_se double precision;
    v_z double precision;
    v_p double precision;
    v_no_traffic text;
    v_at text := pg_catalog.to_char(p_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS');
begin
    v_no_traffic := case
        when p_kill_switch then 'not applicable: the kill switch is on, so there is no v1.1 traffic by design'
        when p_stage = 'off' then 'not applicable: stage off, so there is no v1.1 traffic by design'
    end;
    -- the oldest bucket any check can read: a parameter of the statement below, so the generic plan prunes every
    -- partition older than the longest window when the executor starts (p_at prunes the newer ones)
    select p_at - pg_catalog.max(case when x.severity = 'P0' then coalesce(p_p0_window, x.window_length)
                                      else x.window_length end)
      into v_floor
      from chat_v11.metric as x;
    -- one statement for every metric and both cohorts: per (metric, cohort) an index range scan of
    -- (p_at - window, p_at] on the (metric, cohort, bucket_start) key
    for m in
        select x.*, w.w as win,
               c.numerator as c_numerator, c.denominator as c_denominator, c.buckets as c_buckets,
               c.newest as c_newest, c.oldest as c_oldest, c.median_value as c_median,
               b.numerator as b_numerator, b.denominator as b_denominator, b.buckets as b_buckets,
               b.newest as b_newest, b.oldest as b_oldest, b.median_value as b_median
          from chat_v11.metric as x
         cross join lateral (
             select case when x.severity = 'P0' then coalesce(p_p0_window, x.window_length) else x.window_length end
         ) as w (w)
         cross join lateral chat_v11.cohort_window(x.metric, 'canary', p_at - w.w, p_at, v_floor) as c
         cross join lateral chat_v11.cohort_window(x.metric, 'control', p_at - w.w, p_at, v_floor) as b
         order by x.ordinal
    loop
        v_window := m.win;

        metric := m.metric;
        severity := m.severity;
        "window" := v_window;
        baseline := null;
        threshold := null;
        value := null;
        newest_bucket := greatest(m.c_newest, m.b_newest);
        oldest_bucket := least(m.c_oldest, m.b_oldest);
        v_buckets := m.c_buckets + m.b_buckets;
        v_fresh := newest_bucket is not null and newest_bucket >= p_at - m.freshness;

        if m.severity = 'P0' then
            -- P0: all cohorts; any event fails whatever the volume; volume and freshness decide pass
            v_events := coalesce(m.c_numerator, 0) + coalesce(m.b_numerator, 0);
            v_den := coalesce(m.c_denominator, 0) + coalesce(m.b_denominator, 0);
            scope := case when m.rule = 'threshold' then 'per cohort' else 'all cohorts' end;
            threshold := m.threshold;
            if m.kind = 'rate' then
                volume := v_den;
                value := case when v_den > 0 then round(v_events / v_den, 6) end;
            else
                volume := v_buckets;
                value := v_events;
            end if;
            if m.rule = 'threshold' then
                v_c_rate := case when m.c_denominator > 0 then m.c_numerator / m.c_denominator end;
                v_b_rate := case when m.b_denominator > 0 then m.b_numerator / m.b_denominator end;
                value := round(greatest(v_c_rate, v_b_rate), 6);
            end if;

            if m.rule in ('zero', 'no_new') and v_events > 0 then
                status := 'fail';
                explanation := format('%s events in the %s before %s UTC over all cohorts (canary %s, control %s)%s',
                                      v_events, v_window, v_at, coalesce(m.c_numerator, 0), coalesce(m.b_numerator, 0),
                                      case when m.kind = 'rate' and v_den > 0
                                          then format(', rate %s', round(v_events / v_den, 6)) else '' end);
            elsif m.rule = 'threshold' and (v_c_rate > m.threshold or v_b_rate > m.threshold) then
                status := 'fail';
                explanation := format('rate above the threshold %s in the %s before %s UTC: canary %s, control %s',
                                      m.threshold, v_window, v_at,
                                      coalesce(round(v_c_rate, 6)::text, 'no data'),
                                      coalesce(round(v_b_rate, 6)::text, 'no data'));
            elsif newest_bucket is null then
                status := 'inconclusive';
                explanation := format('no data: no samples in the %s before %s UTC', v_window, v_at);
            elsif volume < m.min_volume then
                status := 'inconclusive';
                explanation := format('too little data: volume %s, needs at least %s %s', volume, m.min_volume,
                                      case when m.kind = 'rate' then 'events' else 'buckets' end);
            elsif not v_fresh then
                status := 'inconclusive';
                explanation := format('stale: the newest bucket (%s UTC) is older than %s',
                                      pg_catalog.to_char(newest_bucket at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                                      m.freshness);
            else
                status := 'pass';
                explanation := format('no events in the %s before %s UTC (volume %s, newest bucket %s UTC)',
                                      v_window, v_at, volume,
                                      pg_catalog.to_char(newest_bucket at time zone 'UTC', 'HH24:MI:SS'));
                if m.rule = 'threshold' then
                    explanation := format('every cohort at or below %s in the %s before %s UTC (volume %s)',
                                          m.threshold, v_window, v_at, volume);
                end if;
            end if;
        else
            -- P1: canary against the control baseline (or the static baseline), per cohort
            scope := 'canary vs control';
            v_c_fresh := m.c_newest is not null and m.c_newest >= p_at - m.freshness;
            v_b_fresh := m.b_newest is not null and m.b_newest >= p_at - m.freshness;
            if m.kind = 'rate' then
                volume := coalesce(m.c_denominator, 0);
                v_c_rate := case when m.c_denominator > 0 then m.c_numerator / m.c_denominator end;
                v_b_rate := case
                    when coalesce(m.b_denominator, 0) >= m.min_volume and v_b_fresh then m.b_numerator / m.b_denominator
                    else m.static_baseline
                end;
            else
                volume := m.c_buckets;
                v_c_rate := m.c_median;
                v_b_rate := case
                    when m.b_buckets >= m.min_volume and v_b_fresh then m.b_median
                    else m.static_baseline
                end;
            end if;
            v_limit := v_b_rate * m.factor + coalesce(m.slack, 0);
            value := round(v_c_rate, case when m.kind = 'rate' then 6 else 1 end);
            baseline := round(v_b_rate, case when m.kind = 'rate' then 6 else 1 end);
            threshold := round(v_limit, case when m.kind = 'rate' then 6 else 1 end);

            if v_no_traffic is not null then
                status := 'not_applicable';
                explanation := v_no_traffic;
            elsif m.c_newest is null then
                status := 'inconclusive';
                explanation := format('no data: no canary samples in the %s before %s UTC', v_window, v_at);
            elsif volume < m.min_volume then
                status := 'inconclusive';
                explanation := format('too little canary data: volume %s, needs at least %s %s', volume,
                                      m.min_volume, case when m.kind = 'rate' then 'events' else 'buckets' end);
            elsif not v_c_fresh then
                status := 'inconclusive';
                explanation := format('stale: the newest canary bucket (%s UTC) is older than %s',
                                      pg_catalog.to_char(m.c_newest at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                                      m.freshness);
            elsif v_b_rate is null then
                status := 'inconclusive';
                explanation := format('no baseline: control volume %s (needs %s, fresh) and no static baseline '
                                      'configured', coalesce(case when m.kind = 'rate' then m.b_denominator
                                                                   else m.b_buckets end, 0), m.min_volume);
            elsif v_c_rate <= v_limit then
                status := 'pass';
                explanation := format('canary %s within baseline %s x %s + %s = %s%s', value,
                                      baseline, m.factor, coalesce(m.slack, 0), threshold,
                                      case when coalesce(m.b_denominator, m.b_buckets, 0) < m.min_volume
                                                or not v_b_fresh
                                          then ' (static baseline)' else '' end);
            elsif m.kind <> 'rate' then
                status := 'fail';
                explanation := format('canary median p95 %s ms above baseline %s ms x %s = %s ms (%s canary buckets)',
                                      round(v_c_rate, 1), round(v_b_rate, 1), m.factor, round(v_limit, 1), m.c_buckets);
            else
                -- one-sided unpooled two-proportion z test of H0: canary rate <= factor x baseline + slack
                v_se := sqrt(
                    (v_c_rate * (1 - v_c_rate) / m.c_denominator)::double precision
                    + case
                        when coalesce(m.b_denominator, 0) >= m.min_volume and v_b_fresh
                            then (m.factor ^ 2 * v_b_rate * (1 - v_b_rate) / m.b_denominator)::double precision
                        else 0
                    end
                );
                v_z := case when v_se > 0 then ((v_c_rate - v_limit)::double precision / v_se) end;
                v_p := case when v_se > 0 then 1 - chat_v11.normal_cdf(v_z) else 0 end;
                if v_p < m.alpha then
                    status := 'fail';
                else
                    status := 'inconclusive';
                end if;
                explanation := format('canary %s above baseline %s x %s + %s = %s; %s (z = %s, p = %s, alpha %s)',
                                      round(v_c_rate, 6), round(v_b_rate, 6), m.factor, coalesce(m.slack, 0),
                                      round(v_limit, 6),
                                      case when status = 'fail' then 'significant at this volume'
                                           else 'not significant at this volume yet' end,
                                      coalesce(round(v_z::numeric, 2)::text, 'inf'), round(v_p::numeric, 4), m.alpha);
            end if;
        end if;
        return next;
    end loop;
end
$$;

revoke all on function chat_v11.evaluate_checks(timestamptz, text, boolean, interval) from public;
comment on function chat_v11.evaluate_checks(timestamptz, text, boolean, interval) is
'Release-gate checks at p_at for the given stage and kill switch: pass, fail, inconclusive or not_applicable, '
'with value, baseline, threshold, volume and why. p_p0_window replaces the P0 windows (resume exit window).';

-- >>> sql/0512_function_copy_stage_traffic_percent.sql
-- Trigger function (BEFORE INSERT OR UPDATE OF stage on chat_v11.rollout_state): copies the stage's traffic
-- percent into the state row when the stage is set or changes. The stage row is read FOR KEY SHARE, the lock
-- the foreign key check takes right after anyway (so nothing waits longer than before), and that returns the
-- newest committed percent when a stage settings change was in flight. An unchanged stage keeps its percent:
-- a kill or hold at the current stage reads and locks nothing in chat_v11.stage.
create or replace function chat_v11.copy_stage_traffic_percent()
returns trigger
language plpgsql
set search_path = pg_catalog, chat_v11, pg_temp
as $$
begin
    if tg_op = 'UPDATE' and new.stage = old.stage then
        return new;
    end if;
    select t.traffic_percent into new.traffic_percent
      from chat_v11.stage as t
     where t.stage = new.stage
       for key share;
    if not found then
        raise exception using
            errcode = 'RO002',
            message = format('unknown stage %s', chat_v11.shown(new.stage)),
            detail = 'The rollout state names a stage of chat_v11.stage; its traffic percent comes from there.',
            hint = 'Name one of the known stages.';
    end if;
    return new;
end
$$;

revoke all on function chat_v11.copy_stage_traffic_percent() from public;
comment on function chat_v11.copy_stage_traffic_percent() is
'Trigger: copies the traffic percent of the state''s stage into chat_v11.rollout_state when the stage changes.';

-- >>> sql/0514_function_follow_stage_traffic_percent.sql
-- Trigger function (AFTER UPDATE OF traffic_percent on chat_v11.stage, when it changed): the state row keeps the
-- current stage's percent. Only a change of the current stage touches the state row, and it takes that row like
-- every state call does (chat_v11.lock_state: a wait bounded by state_lock_timeout, then RO010 naming the
-- blocker), so a kill behind it waits at most what it waits behind any other state call; other stages and
-- min_observation changes take no state lock at all. public.chat_set_v11_stage_settings() takes the state row
-- before the stage row (one lock order with the state calls); a direct owner UPDATE is kept right here too.
create or replace function chat_v11.follow_stage_traffic_percent()
returns trigger
language plpgsql
set search_path = pg_catalog, chat_v11, pg_temp
as $$
declare
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
begin
    -- peek_state reads the state within the state_lock_timeout bound (RO010 behind an ACCESS EXCLUSIVE holder)
    if exists (select from chat_v11.peek_state() as p where p.stage = new.stage) then
        perform chat_v11.lock_state();
        -- the locked row is the newest: a state call that moved the stage meanwhile leaves nothing to update
        update chat_v11.rollout_state as s
           set traffic_percent = new.traffic_percent
         where s.stage = new.stage;
    end if;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    return null;
end
$$;

revoke all on function chat_v11.follow_stage_traffic_percent() from public;
comment on function chat_v11.follow_stage_traffic_percent() is
'Trigger: a changed traffic percent of the current stage is copied into chat_v11.rollout_state (state lock bounded).';

-- >>> sql/0516_trigger_rollout_state_traffic_percent.sql
-- The state row carries its stage's traffic percent: set on insert and whenever the stage changes.
create trigger rollout_state_traffic_percent
before insert or update of stage on chat_v11.rollout_state
for each row execute function chat_v11.copy_stage_traffic_percent();

-- >>> sql/0517_trigger_stage_traffic_percent.sql
-- A changed traffic percent of the current stage is copied into the state row.
create trigger stage_traffic_percent_follows
after update of traffic_percent on chat_v11.stage
for each row
when (new.traffic_percent is distinct from old.traffic_percent)
execute function chat_v11.follow_stage_traffic_percent();

-- >>> sql/0560_function_put_samples.sql
-- Validates and stores a batch of typed samples (parallel arrays, position = sample number), all or
-- nothing; then judges any P0 event of the batch at once (chat_v11.auto_kill). Returns the count written.
--
-- Built for throughput (docs/design.md, "Ingestion: how it reaches N samples/s"): the fast checks below only
-- decide whether the batch is clean, with array operators and one pass over the rows, and the table's own
-- constraints (NOT NULL, cohort, 10-second alignment, counts) back them up; whenever something is wrong, the
-- exact validation (chat_v11.refuse_samples) finds the first bad sample by position and raises its refusal.
-- New buckets are written by a plain INSERT; only when a key is stored already (or repeated) is the batch upserted.
-- A bucket sent twice in the batch is not looked for up front: the upsert raises 21000 on it, and only then is
-- it named (RO025). Rows are written in one global key order, so concurrent batches never deadlock.
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
    v_names text[];  -- the catalog's metric names in byte order: the write order, and the index of the next two
    v_kinds text[];
    v_p0 text[];
    v_bad boolean;
    v_written integer;
    v_evidence timestamptz;
begin
    perform chat_v11.begin_write('chat_put_v11_metric_samples');
    if v_total = 0 then
        return 0;
    end if;
    select coalesce(array_agg(m.metric order by m.metric collate "C"), '{}'),
           coalesce(array_agg(m.kind order by m.metric collate "C"), '{}'),
           coalesce(array_agg(m.metric) filter (where m.severity = 'P0'), '{}')
      into v_names, v_kinds, v_p0
      from chat_v11.metric as m;

    -- FAST CHECKS, whole arrays at once (operators over arrays, no row built): metric, cohort, bucket_start
    -- present and finite and at most 5 minutes ahead, no negative count, value within [0, 1e12] (NaN and
    -- +-Infinity fail these comparisons too)
    if not p_metric <@ v_names
       or not p_cohort <@ '{canary,control}'::text[]
       or pg_catalog.array_position(p_bucket_start, null) is not null
       or '-infinity'::timestamptz = any(p_bucket_start)
       or v_now + interval '5 minutes' < any(p_bucket_start)
       or (0 > any(p_numerator)) is true
       or (0 > any(p_denominator)) is true
       or (0 > any(p_value)) is true
       or (1e12 < any(p_value)) is true then
        perform chat_v11.refuse_samples(p_metric, p_cohort, p_bucket_start, p_numerator, p_denominator, p_value,
                                        v_now);
    end if;
    -- ... then one pass over the rows for what depends on the metric's kind, and the guard's evidence: the
    -- newest bucket of the batch with a P0 event
    select pg_catalog.bool_or(
               case v_kinds[pg_catalog.array_position(v_names, x.metric)]
                   when 'rate' then x.numerator is null or x.denominator is null or x.numerator > x.denominator
                   when 'count' then x.numerator is null
                   when 'latency_ms' then x.value is null
                   else false
               end
           ),
           pg_catalog.max(x.bucket_start) filter (where x.numerator > 0 and x.metric = any(v_p0))
      into v_bad, v_evidence
      from (
          select unnest(p_metric) as metric, unnest(p_bucket_start) as bucket_start,
                 unnest(p_numerator) as numerator, unnest(p_denominator) as denominator, unnest(p_value) as value
      ) as x;
    if v_bad then
        perform chat_v11.refuse_samples(p_metric, p_cohort, p_bucket_start, p_numerator, p_denominator, p_value,
                                        v_now);
    end if;

    -- WRITE: idempotent, a re-sent bucket replaces the stored one. Key order (metric by its byte order, canary
    -- before control, bucket_start) is one total order for every writer, in both statements below: concurrent
    -- batches never deadlock; it sorts on an integer, a boolean and a timestamp, never comparing text.
    begin
        begin
            -- new buckets, the usual case: a plain INSERT, cheaper than an upsert (no speculative insertion)
            insert into chat_v11.metric_sample (metric, cohort, bucket_start, numerator, denominator, value, written_at)
            select x.metric, x.cohort, x.bucket_start, x.numerator, x.denominator, x.value, v_now
              from (
                  select unnest(p_metric) as metric, unnest(p_cohort) as cohort,
                         unnest(p_bucket_start) as bucket_start, unnest(p_numerator) as numerator,
                         unnest(p_denominator) as denominator, unnest(p_value) as value
              ) as x
             order by pg_catalog.array_position(v_names, x.metric), x.cohort = 'control', x.bucket_start;
            get diagnostics v_written = row_count;
        exception when unique_violation then
            -- a bucket stored already (re-sent, or by a concurrent writer that committed first) or twice in this
            -- batch: the attempt is rolled back (its rows and its locks) and the batch is upserted
            insert into chat_v11.metric_sample as s (
                metric, cohort, bucket_start, numerator, denominator, value, written_at
            )
            select x.metric, x.cohort, x.bucket_start, x.numerator, x.denominator, x.value, v_now
              from (
                  select unnest(p_metric) as metric, unnest(p_cohort) as cohort,
                         unnest(p_bucket_start) as bucket_start, unnest(p_numerator) as numerator,
                         unnest(p_denominator) as denominator, unnest(p_value) as value
              ) as x
             order by pg_catalog.array_position(v_names, x.metric), x.cohort = 'control', x.bucket_start
                on conflict (metric, cohort, bucket_start) do update
               set numerator = excluded.numerator,
                   denominator = excluded.denominator,
                   value = excluded.value,
                   written_at = excluded.written_at;
            get diagnostics v_written = row_count;
        end;
    exception when cardinality_violation or check_violation or not_null_violation then
        -- a bucket twice in the batch (21000 from the upsert), or a sample the fast checks let through and a
        -- constraint refused: name it exactly; what the exact validation does not refuse is raised as it came
        perform chat_v11.refuse_samples(p_metric, p_cohort, p_bucket_start, p_numerator, p_denominator, p_value,
                                        v_now);
        raise;
    end;

    -- GUARD: a P0 event in this batch is judged now, at the newest bucket that carries one
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

-- >>> sql/0561_function_refuse_samples.sql
-- The exact, slow validation of an ingestion batch (SPEC 4.4), run only when the fast checks of
-- chat_v11.put_samples saw something wrong: raises the refusal of the first bad sample by position
-- (RO021-RO024, chat_v11.sample_problem), else of the first bucket sent twice (RO025); returns when the
-- batch has neither (the caller then re-raises what it caught).
create or replace function chat_v11.refuse_samples(
    p_metric text[],
    p_cohort text[],
    p_bucket_start timestamptz[],
    p_numerator bigint[],
    p_denominator bigint[],
    p_value double precision[],
    p_now timestamptz
)
returns void
language plpgsql
stable
as $$
declare
    v_total integer := coalesce(pg_catalog.cardinality(p_metric), 0);
    v_bad record;
begin
    select x.ord, p.code, p.problem,
           pg_catalog.json_build_object('metric', x.metric, 'cohort', x.cohort, 'bucket_start', x.bucket_start,
                                        'numerator', x.numerator, 'denominator', x.denominator,
                                        'value', x.value)::text as sample
      into v_bad
      from unnest(p_metric, p_cohort, p_bucket_start, p_numerator, p_denominator, p_value)
               with ordinality as x (metric, cohort, bucket_start, numerator, denominator, value, ord)
      left join chat_v11.metric as m on m.metric = x.metric
     cross join lateral chat_v11.sample_problem(
         m.kind, x.metric, x.cohort, x.bucket_start, x.numerator, x.denominator, x.value, p_now
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
end
$$;

revoke all on function chat_v11.refuse_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[],
    timestamptz
) from public;
comment on function chat_v11.refuse_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[],
    timestamptz
) is
'Slow path of ingestion: raises the refusal of the first bad sample of a batch by position (RO021-RO024), else '
'of the first repeated bucket (RO025); returns when there is neither.';

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
'those days out of the default partition. Returns the number created. Run by the guardrails and the migration.';

-- >>> sql/0575_function_prune_samples.sql
-- Retention without bulk DELETE: every daily partition whose whole day is older than p_cutoff is dropped whole; only
-- the day that straddles p_cutoff and the default partition lose rows one by one (a few buckets a run when the
-- guardrails run every few seconds). Returns the partitions dropped and the rows deleted.
create or replace function chat_v11.prune_samples(p_cutoff timestamptz)
returns table (dropped text[], deleted bigint)
language plpgsql
volatile
as $$
declare
    v_part record;
    v_dropped text[] := '{}';
    v_deleted bigint := 0;
    v_n bigint;
    v_cutoff_day date := (p_cutoff at time zone 'UTC')::date;
begin
    for v_part in
        select c.relname
          from pg_catalog.pg_inherits as i
          join pg_catalog.pg_class as c on c.oid = i.inhrelid
         where i.inhparent = 'chat_v11.metric_sample'::regclass
           and c.relname ~ '^metric_sample_p[0-9]{8}$'
           and pg_catalog.to_date(pg_catalog.substr(c.relname, 16), 'YYYYMMDD') < v_cutoff_day
         order by c.relname
    loop
        execute pg_catalog.format('drop table chat_v11.%I', v_part.relname);
        v_dropped := v_dropped || v_part.relname::text;
    end loop;
    -- the straddling day: rows before the cutoff (its partition, when it exists, is the only one scanned)
    delete from chat_v11.metric_sample as s
     where s.bucket_start >= (v_cutoff_day::timestamp at time zone 'UTC')
       and s.bucket_start < p_cutoff;
    get diagnostics v_n = row_count;
    v_deleted := v_deleted + v_n;
    delete from chat_v11.metric_sample_default as d where d.bucket_start < p_cutoff;
    get diagnostics v_n = row_count;
    v_deleted := v_deleted + v_n;
    return query select v_dropped, v_deleted;
end
$$;

revoke all on function chat_v11.prune_samples(timestamptz) from public;
comment on function chat_v11.prune_samples(timestamptz) is
'Retention: drops every daily partition of chat_v11.metric_sample older than the cutoff day, deletes the rows before '
'the cutoff in the straddling day and in the default partition. Returns the partitions dropped and rows deleted.';

-- >>> sql/0600_function_chat_get_v11_rollout_state.sql
-- The rollout state now: stage, traffic, kill switch, freeze, who changed it, when, version.
-- The hot read path (docs/design.md, "The hot read path"): the one API function that is SECURITY INVOKER, so the
-- planner inlines it into the caller's query (a scan of the state table, no function call, no SET). Its body
-- names nothing but schema-qualified columns of chat_v11_read.rollout_state: no operator, no function, no cast,
-- no unqualified name, so the caller's search_path (pg_temp or a hostile schema first) cannot change its meaning.
-- The view runs with its owner's rights: readers get SELECT on it and nothing on chat_v11.
create or replace function public.chat_get_v11_rollout_state()
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
language sql
stable
security invoker
as $$
    select chat_v11_read.rollout_state.stage,
           chat_v11_read.rollout_state.traffic_percent,
           chat_v11_read.rollout_state.kill_switch,
           chat_v11_read.rollout_state.promotion_frozen,
           chat_v11_read.rollout_state.reason,
           chat_v11_read.rollout_state.changed_by,
           chat_v11_read.rollout_state.actor,
           chat_v11_read.rollout_state.changed_at,
           chat_v11_read.rollout_state.version
      from chat_v11_read.rollout_state
$$;

revoke all on function public.chat_get_v11_rollout_state() from public;
grant execute on function public.chat_get_v11_rollout_state() to chat_rollout_reader;
comment on function public.chat_get_v11_rollout_state() is
'Source of truth: the rollout state now (stage, traffic %, kill switch, promotion freeze, reason, '
'changed_by = session_user, claimed actor, changed_at, version). Read-only. SECURITY INVOKER on purpose (the '
'hot read path): inlined into the caller''s query over the read-only view chat_v11_read.rollout_state, which '
'only chat_rollout_reader may read; its body names only that view''s columns, so no search_path changes it.';

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
begin
    perform chat_v11.begin_write('chat_set_v11_rollout_state');
    if p_kill_switch is null then
        raise exception using
            errcode = 'RO011',
            message = 'p_kill_switch must be true or false',
            detail = 'A null kill switch does not say whether to stop or to resume.',
            hint = 'Pass true to engage the kill switch, false to hold, roll back, promote or resume.';
    end if;

    if not p_kill_switch then
        -- what the caller saw, for the guard below (a kill means the same whatever it waited for)
        select p.* into v_seen from chat_v11.peek_state() as p;
    end if;
    v_state := chat_v11.lock_state();
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
        -- the history), no incident. Only functions of every revision: a kill that waited for a downgrade
        -- runs the restored ones.
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
        v_action, v_to_stage, v_to_kill, v_frozen, v_reason, v_note, v_snapshot, null
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

-- >>> sql/0670_function_chat_set_v11_stage_settings.sql
-- Changes a stage's traffic percent and minimum observation window (null keeps the current value).
-- The state row carries the current stage's percent (trigger chat_v11.follow_stage_traffic_percent): a change
-- of the current stage's percent takes the state row first, bounded like a state call (chat_v11.lock_state,
-- RO010), then the stage row -- the lock order of the state calls, so the two never deadlock. Any other change
-- takes no state lock. A kill waits behind it at most state_lock_timeout, as behind any state call.
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
begin
    perform chat_v11.begin_write('chat_set_v11_stage_settings');
    if p_traffic_percent is not null and exists (
        select
          from chat_v11.peek_state() as p
          join chat_v11.stage as t on t.stage = p.stage
         where p.stage = p_stage and t.traffic_percent is distinct from p_traffic_percent
    ) then
        perform chat_v11.lock_state();
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
    v_suspect boolean;
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

    -- VALIDATE the JSON shape. Fast: whole-array tests that only say whether some sample breaks a rule of
    -- chat_v11.sample_shape_problem: every element an object (a JSON path in strict mode, no unwrapping); no key
    -- outside the six; then one JSON path in lax mode: a metric, cohort or bucket_start not a string or a
    -- bucket_start not ISO 8601 with an offset, a count or value neither a JSON number nor null, a negative,
    -- fractional or out-of-range count, a value beyond 1e12. Only then the exact check names the first such
    -- sample by position.
    v_suspect := pg_catalog.jsonb_path_exists(p_samples, 'strict $[*] ? (@.type() != "object")');
    if not v_suspect then
        v_suspect := exists (
            select from pg_catalog.jsonb_array_elements(p_samples) as e (sample)
             where e.sample - '{metric,cohort,bucket_start,numerator,denominator,value}'::text[] <> '{}'::jsonb
        )
        or pg_catalog.jsonb_path_exists(p_samples, ('lax $[*] ? ('
            || '!(@.metric.type() == "string") || !(@.cohort.type() == "string")'
            || ' || !(@.bucket_start.type() == "string")'
            || ' || !(@.bucket_start like_regex '
            || '"^\\d{4}-\\d{2}-\\d{2}[T ]\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,6})?(Z|z|[+-]\\d{2}(:?\\d{2})?)$")'
            || ' || (exists (@.numerator) && !(@.numerator.type() == "number" || @.numerator.type() == "null"))'
            || ' || (exists (@.denominator) && !(@.denominator.type() == "number" || @.denominator.type() == "null"))'
            || ' || (exists (@.value) && !(@.value.type() == "number" || @.value.type() == "null"))'
            || ' || @.numerator < 0 || @.denominator < 0'
            || ' || @.numerator.floor() != @.numerator || @.denominator.floor() != @.denominator'
            || ' || @.numerator > 9223372036854775807 || @.denominator > 9223372036854775807'
            || ' || @.value > 1e12 || @.value < -1e12)')::jsonpath);
    end if;
    if v_suspect then
        select e.ord, p.code, p.problem, e.sample::text as sample
          into v_bad
          from pg_catalog.jsonb_array_elements(p_samples) with ordinality as e (sample, ord)
         cross join lateral chat_v11.sample_shape_problem(e.sample) as p
         order by e.ord
         limit 1;
        if v_bad.ord is not null then
            perform chat_v11.reject_sample(v_bad.ord, v_total, v_bad.code, v_bad.problem, v_bad.sample);
        end if;
    end if;

    -- READ the fields into typed arrays in one pass, in the array's order (jsonb_to_recordset returns the elements
    -- in order; a date such as 2026-13-45 passes the pattern but not the cast)
    begin
        select array_agg(x.metric), array_agg(x.cohort), array_agg(x.bucket_start), array_agg(x.numerator),
               array_agg(x.denominator), array_agg(x.value)
          into v_metric, v_cohort, v_bucket, v_numerator, v_denominator, v_value
          from pg_catalog.jsonb_to_recordset(p_samples) as x (
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

-- >>> sql/0710_function_chat_run_v11_guardrails.sql
-- The time-based guardrails, safe to run every few seconds (pg_cron or any scheduler), idempotent:
-- a P0 failure engages the kill switch, stale P0 data freezes promotion, daily partitions of the metric store are
-- created ahead and old ones dropped whole (retention).
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
    v_pruned record;
    v_created integer;
    v_acted bigint;
begin
    perform chat_v11.begin_write('chat_run_v11_guardrails');
    -- GUARD: a failing P0 check kills (the same rule as at ingestion, for evidence the writer missed)
    v_version := chat_v11.auto_kill(v_now, 'guardrail run');
    if v_version is not null then
        v_acted := v_version;
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
                v_acted := v_new.version;
                return query select 'hold'::text, v_new.version, v_new.reason;
            end if;
        end if;
    end if;

    -- PARTITIONS and RETENTION: only in a run that changed no state (no state row lock is held, so no lock cycle
    -- with a kill or an ingestion), one run at a time, each DDL waiting at most 50 ms for its locks: a busy moment
    -- skips the work (all of it, atomically) until the next run, it never makes readers or the kill switch queue.
    if v_acted is null and pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('chat_v11.metric_sample maintenance')) then
        begin
            perform pg_catalog.set_config('lock_timeout', '50ms', true);
            -- at least 3 days ahead at all times; when a day in that span is missing, up to a week ahead at once
            -- (so DDL runs every few days, not at every midnight)
            v_created := 0;
            if exists (
                select
                  from pg_catalog.generate_series(-1, 3) as g (d)
                 where pg_catalog.to_regclass(
                           'chat_v11.metric_sample_p'
                           || pg_catalog.to_char((v_now at time zone 'UTC')::date + g.d, 'YYYYMMDD')
                       ) is null
            ) then
                v_created := chat_v11.ensure_sample_partitions((v_now at time zone 'UTC')::date - 1,
                                                               (v_now at time zone 'UTC')::date + 7);
            end if;
            select p.dropped, p.deleted into v_pruned from chat_v11.prune_samples(v_now - v_retention) as p;
            if v_created > 0 then
                return query select 'partition'::text, null::bigint,
                                    format('%s daily partitions of the metric store created ahead', v_created);
            end if;
            if v_pruned.deleted > 0 or pg_catalog.cardinality(v_pruned.dropped) > 0 then
                return query select 'prune'::text, null::bigint,
                                    format('samples older than %s removed: %s daily partitions dropped whole%s, '
                                           || '%s rows deleted one by one', v_retention,
                                           pg_catalog.cardinality(v_pruned.dropped),
                                           case when pg_catalog.cardinality(v_pruned.dropped) > 0
                                                then format(' (%s .. %s)', v_pruned.dropped[1],
                                                            v_pruned.dropped[pg_catalog.cardinality(v_pruned.dropped)])
                                                else '' end,
                                           v_pruned.deleted);
            end if;
        exception when lock_not_available then
            return query select 'partition'::text, null::bigint,
                                'metric store maintenance skipped: a lock was busy for 50 ms; the next run retries'::text;
        end;
    end if;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
end
$$;

revoke all on function public.chat_run_v11_guardrails() from public;
grant execute on function public.chat_run_v11_guardrails() to chat_rollout_ingest;
comment on function public.chat_run_v11_guardrails() is
'Guardrails to run every few seconds (idempotent): a failing P0 check engages the kill switch (auto_kill), '
'stale or missing P0 data freezes promotion (hold, actor guardrail); in a run that changed no state, daily '
'partitions of the metric store are kept 3 to 7 days ahead and samples older than the retention policy removed '
'(whole partitions dropped). Returns one row per action taken.';

-- >>> sql/0910_data_sample_partitions.sql
-- Daily partitions of the metric store from yesterday to a week ahead (UTC); the guardrails keep them ahead.
select chat_v11.ensure_sample_partitions(
    (pg_catalog.now() at time zone 'UTC')::date - 1,
    (pg_catalog.now() at time zone 'UTC')::date + 7
);

-- >>> migrations/steps/0005_b_metric_sample_partitioned_after.sql
-- phase: after
-- Revision 0005: the samples of the unpartitioned table move into the daily partitions (one partition per UTC day
-- that holds samples younger than the retention policy; older ones wait in the default partition for the next
-- guardrails run to prune them), then the empty table is dropped. Nothing is lost: same transaction, and the row
-- counts are compared before the drop.
do $$
declare
    v_first date;
    v_today date := (pg_catalog.now() at time zone 'UTC')::date;
    v_retention interval := coalesce(chat_v11.policy_interval('retention'), interval '30 days');
    v_before bigint;
    v_after bigint;
begin
    select (pg_catalog.min(u.bucket_start) at time zone 'UTC')::date, pg_catalog.count(*)
      into v_first, v_before
      from chat_v11.metric_sample_unpartitioned as u;
    if v_first is not null then
        perform chat_v11.ensure_sample_partitions(
            least(v_today - 1,
                             greatest(v_first, ((pg_catalog.now() - v_retention) at time zone 'UTC')::date)),
            v_today + 7
        );
    end if;
    insert into chat_v11.metric_sample (metric, cohort, bucket_start, numerator, denominator, value, written_at)
    select u.metric, u.cohort, u.bucket_start, u.numerator, u.denominator, u.value, u.written_at
      from chat_v11.metric_sample_unpartitioned as u
     order by u.bucket_start, u.metric, u.cohort;
    get diagnostics v_after = row_count;
    if v_after <> v_before then
        raise exception using
            errcode = 'RO013',
            message = 'the metric samples did not all move into the partitioned store',
            detail = pg_catalog.format('%s rows before, %s moved.', v_before, v_after),
            hint = 'Nothing was changed (the migration rolled back); report this as a bug.';
    end if;
end
$$;
-- squawk-ignore ban-drop-table -- empty now: every row moved into the partitions above, counted
drop table chat_v11.metric_sample_unpartitioned;
-- PostgreSQL 18 names NOT NULL constraints; the partitioned table got <table>_<column>_not_null1 while the old
-- table still held the plain names: give it the names a fresh install gives (nothing to do before 18).
do $$
declare
    v_con record;
begin
    for v_con in
        select c.conname
          from pg_catalog.pg_constraint as c
         where c.conrelid = 'chat_v11.metric_sample'::regclass
           and c.contype = 'n'
           and c.conname ~ '_not_null1$'
    loop
        execute pg_catalog.format('alter table chat_v11.metric_sample rename constraint %I to %I',
                                  v_con.conname, pg_catalog.regexp_replace(v_con.conname, '1$', ''));
    end loop;
end
$$;

-- >>> migrations/steps/0005_c_drop_cohort_window.sql
-- phase: after
-- Revision 0005: cohort_window takes a fifth argument (a lower bound the generic plan prunes partitions with);
-- the four-argument form of revision 0002 goes.
-- squawk-ignore ban-drop-function -- internal (never granted): only evaluate_checks of revisions 0002-0004 called this form
drop function chat_v11.cohort_window(text, text, timestamptz, timestamptz);
