-- What is wrong with one typed metric sample, naming its field, or no row when it may be stored (SPEC 4.4): unknown
-- metric (RO021), wrong cohort, negative or missing counts, numerator > denominator (any kind), NaN or Infinity
-- (RO022), bucket not aligned to 10 s in UTC (RO023), more than 5 minutes in the future (RO024). Every CHECK of
-- chat_v11.metric_sample is covered, so a constraint violation is always named here.
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
                  then 'RO022:cohort ' || chat_v11.shown(p_cohort) || ' must be "canary" or "control"'
              when p_bucket_start is null then 'RO022:bucket_start is missing'
              when p_bucket_start in ('infinity', '-infinity') then 'RO022:bucket_start must be a finite timestamp'
              when p_numerator < 0 then 'RO022:numerator is negative: a count is 0 or more'
              when p_denominator < 0 then 'RO022:denominator is negative: a count is 0 or more'
              when p_kind = 'rate' and p_numerator is null then 'RO022:numerator is missing: a rate needs numerator '
                  || 'and denominator'
              when p_kind = 'rate' and p_denominator is null then 'RO022:denominator is missing: a rate needs '
                  || 'numerator and denominator'
              when p_numerator > p_denominator
                  then pg_catalog.format('RO022:numerator %s is greater than denominator %s', p_numerator,
                                         p_denominator)
              when p_kind = 'count' and p_numerator is null then 'RO022:numerator is missing: a count needs numerator'
              when p_kind = 'latency_ms' and p_value is null
                  then 'RO022:value is missing: a latency needs value (milliseconds)'
              when p_value in ('NaN', 'Infinity', '-Infinity') then 'RO022:value must be a finite number'
              when p_value < 0 or p_value > 1e12 then 'RO022:value must be between 0 and 1e12'
              -- in UTC whatever the session's TimeZone, as the constraint metric_sample_bucket_aligned_utc
              when pg_catalog.date_bin(interval '10 seconds', p_bucket_start, timestamptz '2000-01-01 00:00:00+00')
                   <> p_bucket_start
                  then 'RO023:bucket_start is not aligned to 10 seconds (UTC)'
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
'The SQLSTATE and problem (naming the field) of one typed ingestion sample, or no row when it may be stored; covers '
'every CHECK constraint of chat_v11.metric_sample (alignment in UTC, whatever the session TimeZone).';
