-- >>> sql/0162_table_metric_minute.sql
-- Per-minute totals of the metric samples, kept exact by the statement triggers on chat_v11.metric_sample (sql/0266)
-- and by the retention (chat_v11.prune_samples): one row per (metric, cohort, UTC minute) that holds samples. A gate
-- window reads its whole minutes here and only the buckets of its two partial minutes from the samples
-- (chat_v11.window_totals), so its cost no longer follows the window's length. Derived data: rebuilt from the
-- samples at any time (chat_v11.refresh_sample_minutes).
create table chat_v11.metric_minute (
    metric text not null,
    cohort text not null,
    minute timestamptz not null, -- noqa: RF04
    buckets bigint not null,
    numerators bigint not null,
    numerator_sum numeric,
    denominators bigint not null,
    denominator_sum numeric,
    newest timestamptz,
    oldest timestamptz,
    constraint metric_minute_pkey primary key (metric, cohort, minute),
    constraint metric_minute_counts_valid check (
        buckets between 0 and 6 and numerators between 0 and buckets and denominators between 0 and buckets
    )
);

comment on table chat_v11.metric_minute is
'Per-minute totals of chat_v11.metric_sample (UTC minutes, date_bin from 2000-01-01 UTC): buckets, how many '
'numerators and denominators are not null and their sums, newest and oldest bucket. Kept exact by the triggers of '
'chat_v11.metric_sample and by the retention; read by the gate evaluation (chat_v11.window_totals).';

-- >>> sql/0164_table_gate_evaluation.sql
-- The most recent gate evaluation of the rollout, written where new evidence arrives: by ingestion after each batch
-- (chat_v11.put_samples, through chat_v11.remember_gates; readers cannot write, and a guardrails run must leave the
-- database as it found it when it has nothing to do). One row. The kill reads it instead
-- of evaluating the gates before its commit (SPEC 4.3: a kill is never guarded, its gate_snapshot may be the most
-- recent evaluation, stamped with its own evaluated_at). Derived data: losing it costs one evaluation.
create table chat_v11.gate_evaluation (
    id boolean not null default true,
    evaluated_at timestamptz not null,
    evaluated_by text not null,
    stage text not null,
    kill_switch boolean not null,
    state_version bigint not null,
    snapshot jsonb not null, -- noqa: RF04
    constraint gate_evaluation_pkey primary key (id),
    constraint gate_evaluation_one_row check (id),
    constraint gate_evaluation_by_valid check (evaluated_by in ('ingestion'))
);

comment on table chat_v11.gate_evaluation is
'The most recent gate evaluation (one row): when, by whom (ingestion), for which state (stage, kill '
'switch, version) and the snapshot a history row would carry. A kill records it as its gate_snapshot when it was '
'made for the stage and kill switch the kill stops and is at most a minute old.';

-- >>> sql/0260_function_refresh_sample_minutes.sql
-- Recounts the given (metric, cohort, UTC minute) rows of chat_v11.metric_minute from the samples: called by the
-- statement triggers of chat_v11.metric_sample (sql/0266) for every minute a statement touched, and by the retention.
-- Concurrent writers of one minute stay exact: the minute rows are locked first (inserted when new, in one key order
-- for every writer, so no deadlock), and the recount is a later statement with a new snapshot (READ COMMITTED), so it
-- sees every committed batch of those minutes; a writer that commits later recounts after it. Under REPEATABLE READ
-- a minute row changed since the snapshot raises 40001 (retry), never a lost count.
create or replace function chat_v11.refresh_sample_minutes(p_metric text[], p_cohort text[], p_minute timestamptz[])
returns void
language plpgsql
volatile
-- every read here is a key lookup (the samples of one minute, a minute row); a generic plan built while the day's
-- partition was empty would otherwise scan it whole for every minute of every later batch of the session
set enable_seqscan = off
as $$
begin
    insert into chat_v11.metric_minute as m (metric, cohort, minute, buckets, numerators, denominators)
    select k.metric, k.cohort, k.minute, 0, 0, 0
      from (select distinct u.metric, u.cohort, u.minute
              from unnest(p_metric, p_cohort, p_minute) as u (metric, cohort, minute)) as k
     order by k.metric collate "C", k.cohort, k.minute
        on conflict (metric, cohort, minute) do update set buckets = m.buckets where false;
    update chat_v11.metric_minute as m
       set buckets = r.buckets,
           numerators = r.numerators,
           numerator_sum = r.numerator_sum,
           denominators = r.denominators,
           denominator_sum = r.denominator_sum,
           newest = r.newest,
           oldest = r.oldest
      from (
          select k.metric, k.cohort, k.minute, t.*
            from (select distinct u.metric, u.cohort, u.minute
                    from unnest(p_metric, p_cohort, p_minute) as u (metric, cohort, minute)) as k
           cross join lateral (
               select pg_catalog.count(*) as buckets,
                      pg_catalog.count(s.numerator) as numerators,
                      pg_catalog.sum(s.numerator)::numeric as numerator_sum,
                      pg_catalog.count(s.denominator) as denominators,
                      pg_catalog.sum(s.denominator)::numeric as denominator_sum,
                      pg_catalog.max(s.bucket_start) as newest,
                      pg_catalog.min(s.bucket_start) as oldest
                 from chat_v11.metric_sample as s
                where s.metric = k.metric
                  and s.cohort = k.cohort
                  and s.bucket_start >= k.minute
                  and s.bucket_start < k.minute + interval '1 minute'
           ) as t
      ) as r
     where m.metric = r.metric and m.cohort = r.cohort and m.minute = r.minute;
    delete from chat_v11.metric_minute as m
     using unnest(p_metric, p_cohort, p_minute) as u (metric, cohort, minute)
     where m.metric = u.metric and m.cohort = u.cohort and m.minute = u.minute and m.buckets = 0;
end
$$;

revoke all on function chat_v11.refresh_sample_minutes(text[], text[], timestamptz[]) from public;
comment on function chat_v11.refresh_sample_minutes(text[], text[], timestamptz[]) is
'Recounts the per-minute totals (chat_v11.metric_minute) of the given metric, cohort and UTC minute from the samples; '
'a minute left without samples loses its row. Locks the minute rows first, so concurrent writers stay exact.';

-- >>> sql/0262_function_sample_minutes_changed.sql
-- Statement trigger function of chat_v11.metric_sample (sql/0266): the minutes a statement inserted, updated or
-- deleted samples in are recounted (chat_v11.refresh_sample_minutes), so chat_v11.metric_minute stays exact whoever
-- writes (ingestion, a DBA's DELETE, a test). A minute an INSERT opens (no row yet) takes its totals from the
-- statement's own rows: no committed sample can be in it (the totals are exact, so it would have a row) and a
-- writer in flight waits for this row before it recounts. Writes aimed at one partition directly (the retention,
-- the move of the default partition's rows into a new day) do not fire it: the retention recounts itself, a move
-- changes nothing.
create or replace function chat_v11.sample_minutes_changed()
returns trigger
language plpgsql
volatile
as $$
declare
    v_metric text[];
    v_cohort text[];
    v_minute timestamptz[];
begin
    if tg_op = 'INSERT' then
        -- the minutes this statement opens get its totals; the others are locked (WHERE false) and recounted below
        with n as (
            select s.metric, s.cohort,
                   pg_catalog.date_bin('1 minute'::interval, s.bucket_start,
                                       '2000-01-01 00:00:00+00'::timestamptz) as minute,
                   pg_catalog.count(*) as buckets,
                   pg_catalog.count(s.numerator) as numerators,
                   pg_catalog.sum(s.numerator)::numeric as numerator_sum,
                   pg_catalog.count(s.denominator) as denominators,
                   pg_catalog.sum(s.denominator)::numeric as denominator_sum,
                   pg_catalog.max(s.bucket_start) as newest,
                   pg_catalog.min(s.bucket_start) as oldest
              from new_samples as s
             group by s.metric, s.cohort, minute
        ), opened as (
            insert into chat_v11.metric_minute as m (
                metric, cohort, minute, buckets, numerators, numerator_sum, denominators, denominator_sum, newest,
                oldest
            )
            select n.metric, n.cohort, n.minute, n.buckets, n.numerators, n.numerator_sum, n.denominators,
                   n.denominator_sum, n.newest, n.oldest
              from n
             order by n.metric collate "C", n.cohort, n.minute
                on conflict (metric, cohort, minute) do update set buckets = m.buckets where false
            returning m.metric, m.cohort, m.minute
        )
        select array_agg(n.metric), array_agg(n.cohort), array_agg(n.minute)
          into v_metric, v_cohort, v_minute
          from n
         where not exists (
             select from opened as o where o.metric = n.metric and o.cohort = n.cohort and o.minute = n.minute
         );
    elsif tg_op = 'DELETE' then
        select array_agg(k.metric), array_agg(k.cohort), array_agg(k.minute)
          into v_metric, v_cohort, v_minute
          from (select distinct o.metric, o.cohort,
                       pg_catalog.date_bin('1 minute'::interval, o.bucket_start,
                                           '2000-01-01 00:00:00+00'::timestamptz) as minute
                  from old_samples as o) as k;
    else
        select array_agg(k.metric), array_agg(k.cohort), array_agg(k.minute)
          into v_metric, v_cohort, v_minute
          from (select n.metric, n.cohort,
                       pg_catalog.date_bin('1 minute'::interval, n.bucket_start,
                                           '2000-01-01 00:00:00+00'::timestamptz) as minute
                  from new_samples as n
                union
                select o.metric, o.cohort,
                       pg_catalog.date_bin('1 minute'::interval, o.bucket_start,
                                           '2000-01-01 00:00:00+00'::timestamptz) as minute
                  from old_samples as o) as k;
    end if;
    if v_metric is not null then
        perform chat_v11.refresh_sample_minutes(v_metric, v_cohort, v_minute);
    end if;
    return null;
end
$$;

revoke all on function chat_v11.sample_minutes_changed() from public;
comment on function chat_v11.sample_minutes_changed() is
'Statement trigger of chat_v11.metric_sample: recounts the per-minute totals of every minute the statement '
'inserted, updated or deleted samples in (transition tables new_samples, old_samples); a minute an INSERT opens '
'takes the statement''s own totals.';

-- >>> sql/0266_trigger_metric_sample_minutes.sql
-- The per-minute totals follow every statement on the samples (one trigger per event: a trigger with transition
-- tables takes one event only).
create trigger metric_sample_minutes_insert
after insert on chat_v11.metric_sample
referencing new table as new_samples
for each statement execute function chat_v11.sample_minutes_changed();

create trigger metric_sample_minutes_update
after update on chat_v11.metric_sample
referencing old table as old_samples new table as new_samples
for each statement execute function chat_v11.sample_minutes_changed();

create trigger metric_sample_minutes_delete
after delete on chat_v11.metric_sample
referencing old table as old_samples
for each statement execute function chat_v11.sample_minutes_changed();

-- >>> sql/0362_function_window_totals.sql
-- The same answer as chat_v11.cohort_window (sums of numerators and denominators, bucket count, newest and oldest
-- bucket, median value of one metric and cohort over the buckets in (p_from, p_to], none at or before p_floor) at a
-- cost that no longer follows the window's length: the whole UTC minutes of the window come from the per-minute
-- totals (chat_v11.metric_minute), only the buckets of the two partial minutes at its edges from the samples. The
-- median needs the values themselves: it reads the window's samples, and only when p_median (the P1 latency check).
-- Inlined into chat_v11.evaluate_checks (one statement, generic plan, partitions pruned at executor start-up).
--   first whole minute  a = the minute after the one holding p_from (a bucket at p_from itself is outside)
--   end of whole minutes z = the minute holding p_to + 10 s (a minute counts whole when its last bucket, :50, <= p_to)
--   samples: (p_from, a) and [max(a, z), p_to]; minutes: [a, z) (empty when a >= z: then all comes from samples)
create or replace function chat_v11.window_totals(
    p_metric text, p_cohort text, p_from timestamptz, p_to timestamptz, p_floor timestamptz, p_median boolean
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
    select case when e.numerators + coalesce(w.numerators, 0) > 0
                then coalesce(e.numerator_sum, 0) + coalesce(w.numerator_sum, 0) end,
           case when e.denominators + coalesce(w.denominators, 0) > 0
                then coalesce(e.denominator_sum, 0) + coalesce(w.denominator_sum, 0) end,
           e.buckets + coalesce(w.buckets, 0),
           greatest(e.newest, w.newest),
           least(e.oldest, w.oldest),
           case when p_median then (
               select pg_catalog.percentile_cont(0.5) within group (order by s.value)
                 from chat_v11.metric_sample as s
                where s.metric = p_metric
                  and s.cohort = p_cohort
                  and s.bucket_start > p_from
                  and s.bucket_start <= p_to
                  and s.bucket_start > p_floor
           ) end
      from (
          select pg_catalog.count(s.numerator) as numerators,
                 pg_catalog.sum(s.numerator)::numeric as numerator_sum,
                 pg_catalog.count(s.denominator) as denominators,
                 pg_catalog.sum(s.denominator)::numeric as denominator_sum,
                 pg_catalog.count(*) as buckets,
                 pg_catalog.max(s.bucket_start) as newest,
                 pg_catalog.min(s.bucket_start) as oldest
            from (
                select x.numerator, x.denominator, x.bucket_start
                  from chat_v11.metric_sample as x
                 where x.metric = p_metric
                   and x.cohort = p_cohort
                   and x.bucket_start > p_from
                   and x.bucket_start < pg_catalog.date_bin('1 minute'::interval, p_from,
                                                             '2000-01-01 00:00:00+00'::timestamptz)
                                        + interval '1 minute'
                   and x.bucket_start <= p_to
                   and x.bucket_start > p_floor
                union all
                select y.numerator, y.denominator, y.bucket_start
                  from chat_v11.metric_sample as y
                 where y.metric = p_metric
                   and y.cohort = p_cohort
                   and y.bucket_start >= greatest(
                       pg_catalog.date_bin('1 minute'::interval, p_from, '2000-01-01 00:00:00+00'::timestamptz)
                       + interval '1 minute',
                       pg_catalog.date_bin('1 minute'::interval, p_to + interval '10 seconds',
                                           '2000-01-01 00:00:00+00'::timestamptz)
                   )
                   and y.bucket_start <= p_to
                   and y.bucket_start > p_from
                   and y.bucket_start > p_floor
            ) as s
      ) as e
     cross join (
          select pg_catalog.sum(m.numerators)::bigint as numerators,
                 pg_catalog.sum(m.numerator_sum) as numerator_sum,
                 pg_catalog.sum(m.denominators)::bigint as denominators,
                 pg_catalog.sum(m.denominator_sum) as denominator_sum,
                 pg_catalog.sum(m.buckets)::bigint as buckets,
                 pg_catalog.max(m.newest) as newest,
                 pg_catalog.min(m.oldest) as oldest
            from chat_v11.metric_minute as m
           where m.metric = p_metric
             and m.cohort = p_cohort
             and m.minute >= pg_catalog.date_bin('1 minute'::interval, p_from, '2000-01-01 00:00:00+00'::timestamptz)
                             + interval '1 minute'
             and m.minute < pg_catalog.date_bin('1 minute'::interval, p_to + interval '10 seconds',
                                                '2000-01-01 00:00:00+00'::timestamptz)
      ) as w
$$;

revoke all on function chat_v11.window_totals(text, text, timestamptz, timestamptz, timestamptz, boolean) from public;
comment on function chat_v11.window_totals(text, text, timestamptz, timestamptz, timestamptz, boolean) is
'The totals of chat_v11.cohort_window over (p_from, p_to] from the per-minute totals and the two partial minutes'' '
'samples; the median (from the samples of the window) only when p_median.';

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
-- the generic plan is built once per session, and a session that first evaluates when the day's partition is empty
-- (just created, or vacuumed after a prune) would keep a sequential scan of it for every later call, whatever it
-- holds by then (0011: 150 ms a call in an ingest session, seen by tools/bench); every read here wants an index
set enable_seqscan = off
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
    -- one statement for every metric and both cohorts: per (metric, cohort) the window's whole minutes from the
    -- per-minute totals and the buckets of its two partial minutes (chat_v11.window_totals); the raw values of the
    -- whole window only for the median of a P1 check that is not a rate (the only reader of the median)
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
         cross join lateral chat_v11.window_totals(
             x.metric, 'canary', p_at - w.w, p_at, v_floor, x.severity <> 'P0' and x.kind <> 'rate'
         ) as c
         cross join lateral chat_v11.window_totals(
             x.metric, 'control', p_at - w.w, p_at, v_floor, x.severity <> 'P0' and x.kind <> 'rate'
         ) as b
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

-- >>> sql/0534_function_remember_gates.sql
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

-- >>> sql/0560_function_put_samples.sql
-- Validates and stores a batch of typed samples (parallel arrays, position = sample number), all or
-- nothing; then judges any P0 event of the batch at once (chat_v11.auto_kill) and stores the most recent gate
-- evaluation for a kill to record (chat_v11.remember_gates). Returns the count written. The per-minute totals of
-- the gates follow the write through the table's statement triggers (sql/0266).
--
-- Built for throughput (docs/design.md, "Ingestion: how it reaches N samples/s"): the fast checks below only
-- decide whether the batch is clean, with array operators and one pass over the rows, and the table's own
-- constraints (NOT NULL, cohort, 10-second alignment in UTC, counts) back them up; whenever something is wrong, the
-- exact validation (chat_v11.refuse_samples) finds the first bad sample by position and raises its refusal (a
-- constraint violation always reaches the caller as a project SQLSTATE, RO022-RO025, never as 23514).
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
    v_constraint text;
    v_killed bigint;
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
        -- constraint refused (numerator > denominator of a count, a bucket not aligned in UTC): name it exactly,
        -- by position and field (chat_v11.sample_problem covers every CHECK of the table)
        perform chat_v11.refuse_samples(p_metric, p_cohort, p_bucket_start, p_numerator, p_denominator, p_value,
                                        v_now);
        -- not reached while sample_problem covers the table's constraints: still a project SQLSTATE, never 23514
        get stacked diagnostics v_constraint = constraint_name;
        raise exception using
            errcode = case when sqlstate = '21000' then 'RO025' else 'RO022' end,
            message = format('a sample of %s was refused by the constraint %s', v_total,
                             coalesce(nullif(v_constraint, ''), sqlstate)),
            detail = format('%s Nothing was written.', chat_v11.shown(sqlerrm)),
            hint = 'Fix the sample and send the whole batch again; samples are '
                || '{metric, cohort, bucket_start, numerator, denominator, value}.';
    end;

    -- GUARD: a P0 event in this batch is judged now, at the newest bucket that carries one
    if v_evidence is not null then
        v_killed := chat_v11.auto_kill(v_evidence, 'ingestion');
    end if;
    -- the most recent evaluation, for a kill to record without evaluating (not after an automatic kill: its history
    -- row carries one); at most one every 5 seconds, never a wait (chat_v11.remember_gates)
    if v_killed is null then
        perform chat_v11.remember_gates('ingestion', pg_catalog.clock_timestamp());
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
    v_minute timestamptz;
    v_metrics text[];
    v_cohorts text[];
    v_minutes timestamptz[];
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
    -- the per-minute totals follow (dropped partitions and the default partition fire no trigger of the parent):
    -- every minute wholly before the cutoff goes (one range of the key per metric and cohort), the minute holding
    -- the cutoff is recounted from the samples left
    v_minute := pg_catalog.date_bin('1 minute'::interval, p_cutoff, '2000-01-01 00:00:00+00'::timestamptz);
    delete from chat_v11.metric_minute as m
     using chat_v11.metric as x
     cross join (values ('canary'), ('control')) as c (cohort)
     where m.metric = x.metric and m.cohort = c.cohort and m.minute < v_minute;
    select array_agg(m.metric), array_agg(m.cohort), array_agg(m.minute)
      into v_metrics, v_cohorts, v_minutes
      from chat_v11.metric as x
     cross join (values ('canary'), ('control')) as c (cohort)
      join chat_v11.metric_minute as m on m.metric = x.metric and m.cohort = c.cohort and m.minute = v_minute;
    if v_metrics is not null then
        perform chat_v11.refresh_sample_minutes(v_metrics, v_cohorts, v_minutes);
    end if;
    return query select v_dropped, v_deleted;
end
$$;

revoke all on function chat_v11.prune_samples(timestamptz) from public;
comment on function chat_v11.prune_samples(timestamptz) is
'Retention: drops every daily partition of chat_v11.metric_sample older than the cutoff day, deletes the rows before '
'the cutoff in the straddling day and in the default partition, and the per-minute totals before the cutoff '
'(chat_v11.metric_minute, the cutoff''s minute recounted). Returns the partitions dropped and rows deleted.';

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
'a resume did; a resume also needs every open P0 incident resolved (RO018), a promotion the approvals its stage '
'policy requires, never counting the promoter''s own (RO041).';

-- >>> migrations/versions/0013_fast_gates/steps/a_metric_minute_after.sql
-- phase: after
-- Revision 0013: the per-minute totals of the samples already stored (derived data, rebuilt from the samples). The
-- statement triggers of chat_v11.metric_sample exist by now and CREATE TRIGGER took the table in SHARE ROW EXCLUSIVE
-- mode, which it keeps until this migration commits: no batch writes in between, so the totals are exact.
insert into chat_v11.metric_minute as m (
    metric, cohort, minute, buckets, numerators, numerator_sum, denominators, denominator_sum, newest, oldest
)
select s.metric, s.cohort,
       pg_catalog.date_bin('1 minute'::interval, s.bucket_start, '2000-01-01 00:00:00+00'::timestamptz) as minute,
       pg_catalog.count(*),
       pg_catalog.count(s.numerator),
       pg_catalog.sum(s.numerator)::numeric,
       pg_catalog.count(s.denominator),
       pg_catalog.sum(s.denominator)::numeric,
       pg_catalog.max(s.bucket_start),
       pg_catalog.min(s.bucket_start)
  from chat_v11.metric_sample as s
 group by s.metric, s.cohort, minute;
