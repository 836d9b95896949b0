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
    -- 10-second buckets counted in UTC (date_bin on the absolute time): the same answer whatever the TimeZone
    constraint metric_sample_bucket_aligned_utc check (
        pg_catalog.date_bin('10 seconds'::interval, bucket_start, '2000-01-01 00:00:00+00'::timestamptz) = bucket_start
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
