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
