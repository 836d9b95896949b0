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
