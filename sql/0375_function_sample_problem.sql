-- What is wrong with one typed metric sample, or no row when it may be stored (SPEC 4.4):
-- unknown metric (RO021), wrong cohort, negative or missing counts, numerator > denominator, NaN or
-- Infinity (RO022), bucket not aligned to 10 s (RO023), more than 5 minutes in the future (RO024).
create or replace function chat_v11.sample_problem(
    p_kind text,
    p_metric text,
    p_cohort text,
    p_bucket_start timestamptz,
    p_numerator bigint,
    p_denominator bigint,
    p_value double precision,
    p_now timestamptz
)
returns table (code text, problem text)
language sql
stable
as $$
    select pg_catalog.split_part(v.verdict, ':', 1), pg_catalog.substr(v.verdict, 7)
      from (
          select case
              when p_kind is null then 'RO021:unknown metric ' || chat_v11.shown(p_metric)
              when p_cohort is null or p_cohort not in ('canary', 'control')
                  then 'RO022:cohort must be "canary" or "control"'
              when p_bucket_start is null then 'RO022:bucket_start is missing'
              when p_bucket_start in ('infinity', '-infinity') then 'RO022:bucket_start must be a finite timestamp'
              when p_numerator < 0 or p_denominator < 0 then 'RO022:negative count'
              when p_kind = 'rate' and (p_numerator is null or p_denominator is null)
                  then 'RO022:a rate needs numerator and denominator'
              when p_kind = 'rate' and p_numerator > p_denominator
                  then 'RO022:numerator is greater than denominator'
              when p_kind = 'count' and p_numerator is null then 'RO022:a count needs numerator'
              when p_kind = 'latency_ms' and p_value is null then 'RO022:a latency needs value (milliseconds)'
              when p_value in ('NaN', 'Infinity', '-Infinity') then 'RO022:value must be a finite number'
              when p_value < 0 or p_value > 1e12 then 'RO022:value must be between 0 and 1e12'
              when pg_catalog.date_trunc('second', p_bucket_start) <> p_bucket_start
                   or extract(second from p_bucket_start)::integer % 10 <> 0
                  then 'RO023:bucket_start is not aligned to 10 seconds'
              when p_bucket_start > p_now + interval '5 minutes'
                  then 'RO024:bucket_start is more than 5 minutes in the future'
          end as verdict
      ) as v
     where v.verdict is not null
$$;

revoke all on function chat_v11.sample_problem(
    text,
    text,
    text,
    timestamptz,
    bigint,
    bigint,
    double precision,
    timestamptz
) from public;
comment on function chat_v11.sample_problem(
    text,
    text,
    text,
    timestamptz,
    bigint,
    bigint,
    double precision,
    timestamptz
) is
'The SQLSTATE and problem of one typed ingestion sample, or no row when it may be stored.';
