-- What is wrong with the JSON shape of one ingestion sample, or no row when its fields can be read:
-- an object with known keys, a string metric and cohort, an ISO 8601 bucket_start with an offset,
-- whole non-negative counts and a finite value, all as JSON numbers (SPEC 4.4). Each problem names its field;
-- caller text (an unknown key) is quoted by chat_v11.shown, at most 100 characters.
create or replace function chat_v11.sample_shape_problem(p_sample jsonb)
returns table (code text, problem text)
language sql
immutable
as $$
    with f as (
        select
            pg_catalog.jsonb_typeof(p_sample) as t,
            pg_catalog.jsonb_typeof(p_sample -> 'metric') as t_metric,
            pg_catalog.jsonb_typeof(p_sample -> 'cohort') as t_cohort,
            pg_catalog.jsonb_typeof(p_sample -> 'bucket_start') as t_bucket,
            pg_catalog.jsonb_typeof(p_sample -> 'numerator') as t_num,
            pg_catalog.jsonb_typeof(p_sample -> 'denominator') as t_den,
            pg_catalog.jsonb_typeof(p_sample -> 'value') as t_value
    ),
    unknown as (
        select pg_catalog.min(k.key collate "C") as first_key, pg_catalog.count(*) as n
          from pg_catalog.jsonb_object_keys(
                   case when pg_catalog.jsonb_typeof(p_sample) = 'object' then p_sample else '{}' end
               ) as k (key)
         where k.key not in ('metric', 'cohort', 'bucket_start', 'numerator', 'denominator', 'value')
    ),
    checks as (
        select case
            when f.t is distinct from 'object' then 'the sample is not a JSON object'
            when u.n > 0 then 'unknown key ' || chat_v11.shown(u.first_key)
                || case when u.n > 1 then pg_catalog.format(' (and %s more unknown keys)', u.n - 1) else '' end
            when f.t_metric is distinct from 'string' then 'metric must be a JSON string'
            when f.t_cohort is distinct from 'string' then 'cohort must be a JSON string: "canary" or "control"'
            when f.t_bucket is distinct from 'string'
                 or (p_sample ->> 'bucket_start')
                 !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|z|[+-]\d{2}(:?\d{2})?)$'
                then 'bucket_start must be an ISO 8601 timestamp with an offset, e.g. 2026-11-26T10:00:10Z'
            when f.t_num not in ('number', 'null')
                then 'numerator must be a JSON number or null (NaN and Infinity are not numbers)'
            when f.t_den not in ('number', 'null')
                then 'denominator must be a JSON number or null (NaN and Infinity are not numbers)'
            when f.t_value not in ('number', 'null')
                then 'value must be a JSON number or null (NaN and Infinity are not numbers)'
            when (p_sample ->> 'numerator')::numeric < 0 then 'numerator is negative: a count is 0 or more'
            when (p_sample ->> 'denominator')::numeric < 0 then 'denominator is negative: a count is 0 or more'
            when (p_sample ->> 'numerator')::numeric <> pg_catalog.trunc((p_sample ->> 'numerator')::numeric)
                then 'numerator is a count: a whole number'
            when (p_sample ->> 'denominator')::numeric <> pg_catalog.trunc((p_sample ->> 'denominator')::numeric)
                then 'denominator is a count: a whole number'
            when (p_sample ->> 'numerator')::numeric > 9223372036854775807
                then 'numerator is out of range (at most 9223372036854775807)'
            when (p_sample ->> 'denominator')::numeric > 9223372036854775807
                then 'denominator is out of range (at most 9223372036854775807)'
            when abs((p_sample ->> 'value')::numeric) > 1e12
                then 'value must be between 0 and 1e12'
        end as problem
          from f cross join unknown as u
    )
    select 'RO022', c.problem from checks as c where c.problem is not null
$$;

revoke all on function chat_v11.sample_shape_problem(jsonb) from public;
comment on function chat_v11.sample_shape_problem(jsonb) is
'The JSON-shape problem of one ingestion sample, naming its field (not an object, unknown key quoted at most 100 '
'characters, wrong JSON type, NaN, negative, fractional or out-of-range count), or no row when its fields can be '
'read as typed values.';
