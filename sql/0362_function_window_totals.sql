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
