-- Where the puller reads a metric (SPEC 7, "Prometheus in"): one PromQL expression per sample field, per metric and
-- cohort. Which fields a source has follows the metric's kind (a rate: numerator and denominator; a count:
-- numerator, optionally denominator; a latency: value), checked by public.chat_set_v11_metric_source, the only
-- writer (admin, audited in chat_v11.config_change). Each expression is evaluated at the END of the 10-second bucket
-- (`time=` bucket_start + 10 s), so a count is written as its change over the bucket: sum(x) - sum(x offset 10s)
-- (docs/prometheus-in.md: increase(x[10s]) can lose an event scraped first in a bucket).
create table chat_v11.metric_source (
    metric text not null,
    cohort text not null,
    -- "source" is a keyword to sqlfluff, not to PostgreSQL; the SPEC names the argument p_source
    source jsonb not null,  -- noqa: RF04
    changed_at timestamptz not null default pg_catalog.clock_timestamp(),
    changed_by text not null default session_user,
    constraint metric_source_pkey primary key (metric, cohort),
    constraint metric_source_metric_fkey foreign key (metric) references chat_v11.metric (metric),
    constraint metric_source_cohort_valid check (cohort in ('canary', 'control')),
    constraint metric_source_fields_valid check (
        pg_catalog.jsonb_typeof(source) = 'object'
        and source <> '{}'::jsonb
        and source - '{numerator,denominator,value}'::text[] = '{}'::jsonb
        and not pg_catalog.jsonb_path_exists(source, 'strict $.* ? (@.type() != "string")')
    )
);

comment on table chat_v11.metric_source is
'PromQL per metric, cohort and sample field (numerator, denominator, value) that chat-rollout pull evaluates at '
'the end of each 10-second bucket. Written only by public.chat_set_v11_metric_source (admin, audited).';
