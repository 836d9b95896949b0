-- What is wrong with one metric sample of an ingestion batch, or null when nothing is (SPEC 4.4).
-- Returns the project SQLSTATE and the problem in words; p_kind is the metric's kind (null: unknown).
create or replace function chat_v11.sample_problem(p_sample jsonb, p_kind text, p_now timestamptz)
returns table (code text, problem text)
language sql
stable
as $$
    with f as (
        select
            pg_catalog.jsonb_typeof(p_sample) as t,
            pg_catalog.jsonb_typeof(p_sample -> 'metric') as t_metric,
            pg_catalog.jsonb_typeof(p_sample -> 'bucket_start') as t_bucket,
            pg_catalog.jsonb_typeof(p_sample -> 'numerator') as t_num,
            pg_catalog.jsonb_typeof(p_sample -> 'denominator') as t_den,
            pg_catalog.jsonb_typeof(p_sample -> 'value') as t_value,
            p_sample ->> 'cohort' as cohort,
            p_sample ->> 'bucket_start' as bucket
    ),
    checks as (
        select case
            when f.t is distinct from 'object' then 'RO022:the sample is not a JSON object'
            when exists (
                select from pg_catalog.jsonb_object_keys(p_sample) as k (key)
                 where k.key not in ('metric', 'cohort', 'bucket_start', 'numerator', 'denominator', 'value')
            ) then 'RO022:unknown key ' || (
                select pg_catalog.string_agg(pg_catalog.quote_literal(k.key), ', ')
                  from pg_catalog.jsonb_object_keys(p_sample) as k (key)
                 where k.key not in ('metric', 'cohort', 'bucket_start', 'numerator', 'denominator', 'value')
            )
            when f.t_metric is distinct from 'string' then 'RO022:metric must be a JSON string'
            when p_kind is null then 'RO021:unknown metric ' || pg_catalog.quote_literal(p_sample ->> 'metric')
            when f.cohort is null or f.cohort not in ('canary', 'control')
                then 'RO022:cohort must be "canary" or "control"'
            when f.t_bucket is distinct from 'string'
                 or f.bucket !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|z|[+-]\d{2}(:?\d{2})?)$'
                then 'RO022:bucket_start must be an ISO 8601 timestamp with an offset, e.g. 2026-11-26T10:00:10Z'
            when f.t_num not in ('number', 'null') or f.t_den not in ('number', 'null')
                 or f.t_value not in ('number', 'null')
                then 'RO022:numerator, denominator and value must be JSON numbers (NaN and Infinity are not)'
            when (p_sample ->> 'numerator')::numeric < 0 or (p_sample ->> 'denominator')::numeric < 0
                then 'RO022:negative count'
            when (p_sample ->> 'numerator')::numeric <> pg_catalog.trunc((p_sample ->> 'numerator')::numeric)
                 or (p_sample ->> 'denominator')::numeric <> pg_catalog.trunc((p_sample ->> 'denominator')::numeric)
                then 'RO022:numerator and denominator are counts: whole numbers'
            when (p_sample ->> 'numerator')::numeric > 9223372036854775807
                 or (p_sample ->> 'denominator')::numeric > 9223372036854775807
                then 'RO022:count out of range'
            when p_kind = 'rate' and (f.t_num is distinct from 'number' or f.t_den is distinct from 'number')
                then 'RO022:a rate needs numerator and denominator'
            when p_kind = 'rate' and (p_sample ->> 'numerator')::numeric > (p_sample ->> 'denominator')::numeric
                then 'RO022:numerator is greater than denominator'
            when p_kind = 'count' and f.t_num is distinct from 'number'
                then 'RO022:a count needs numerator'
            when p_kind = 'latency_ms' and f.t_value is distinct from 'number'
                then 'RO022:a latency needs value (milliseconds)'
            when (p_sample ->> 'value')::numeric < 0 or (p_sample ->> 'value')::numeric > 1e12
                then 'RO022:value must be between 0 and 1e12'
            when pg_catalog.date_trunc('second', f.bucket::timestamptz) <> f.bucket::timestamptz
                 or extract(second from f.bucket::timestamptz)::integer % 10 <> 0
                then 'RO023:bucket_start is not aligned to 10 seconds'
            when f.bucket::timestamptz > p_now + interval '5 minutes'
                then 'RO024:bucket_start is more than 5 minutes in the future'
        end as verdict
          from f
    )
    select pg_catalog.split_part(c.verdict, ':', 1), pg_catalog.substr(c.verdict, 7)
      from checks as c
     where c.verdict is not null
$$;

revoke all on function chat_v11.sample_problem(jsonb, text, timestamptz) from public;
comment on function chat_v11.sample_problem(jsonb, text, timestamptz) is
'The SQLSTATE and problem of one ingestion sample (unknown metric or key, wrong JSON types, NaN, negative '
'counts, numerator > denominator, misaligned or future bucket), or no row when the sample is valid.';
