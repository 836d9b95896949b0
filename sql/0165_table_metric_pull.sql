-- What the puller read (SPEC 7, "Prometheus in"): per metric, cohort, bucket and sample field, the query as it was
-- sent (PromQL and the explicit time=), what came of it, the value read before any rounding, and the sha256 and a
-- bounded excerpt of the raw answer, so a postmortem sees what was read and not only what was queried
-- (flagger#1815). Written with the samples of the bucket in one transaction (public.chat_put_v11_metric_pulls);
-- a re-pulled bucket replaces its record. An empty or NaN answer is kept here too: it wrote no sample.
create table chat_v11.metric_pull (
    metric text not null,
    cohort text not null,
    bucket_start timestamptz not null,
    field text not null,
    query text not null,
    query_time timestamptz not null,
    outcome text not null,
    value double precision,
    answer_sha256 text not null,
    answer_excerpt text not null,
    pulled_at timestamptz not null default pg_catalog.clock_timestamp(),
    pulled_by text not null default session_user,
    constraint metric_pull_pkey primary key (metric, cohort, bucket_start, field),
    constraint metric_pull_metric_fkey foreign key (metric) references chat_v11.metric (metric),
    constraint metric_pull_cohort_valid check (cohort in ('canary', 'control')),
    constraint metric_pull_field_valid check (field in ('numerator', 'denominator', 'value')),
    constraint metric_pull_outcome_valid check (outcome in ('value', 'empty', 'nan', 'multiple_series')),
    constraint metric_pull_bucket_aligned_utc check (
        pg_catalog.date_bin('10 seconds'::interval, bucket_start, '2000-01-01 00:00:00+00'::timestamptz) = bucket_start
    ),
    constraint metric_pull_value_valid check ((outcome = 'value') = (value is not null)),
    constraint metric_pull_sha256_valid check (answer_sha256 ~ '^[0-9a-f]{64}$'),
    constraint metric_pull_bounded check (
        pg_catalog.length(query) <= 4500 and pg_catalog.length(answer_excerpt) <= 2000
    )
);

create index metric_pull_bucket_start on chat_v11.metric_pull (bucket_start);

comment on table chat_v11.metric_pull is
'Provenance of pulled buckets: the query sent (PromQL and time=), the outcome (value, empty, nan, multiple_series), '
'the value read, sha256 and excerpt (at most 2000 characters) of the raw Prometheus answer. Write with '
'public.chat_put_v11_metric_pulls(); read with public.chat_get_v11_metric_pulls().';
