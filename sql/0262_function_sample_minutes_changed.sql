-- Statement trigger function of chat_v11.metric_sample (sql/0266): the minutes a statement inserted, updated or
-- deleted samples in are recounted (chat_v11.refresh_sample_minutes), so chat_v11.metric_minute stays exact whoever
-- writes (ingestion, a DBA's DELETE, a test). A minute an INSERT opens (no row yet) takes its totals from the
-- statement's own rows: no committed sample can be in it (the totals are exact, so it would have a row) and a
-- writer in flight waits for this row before it recounts. Writes aimed at one partition directly (the retention,
-- the move of the default partition's rows into a new day) do not fire it: the retention recounts itself, a move
-- changes nothing.
create or replace function chat_v11.sample_minutes_changed()
returns trigger
language plpgsql
volatile
as $$
declare
    v_metric text[];
    v_cohort text[];
    v_minute timestamptz[];
begin
    if tg_op = 'INSERT' then
        -- the minutes this statement opens get its totals; the others are locked (WHERE false) and recounted below
        with n as (
            select s.metric, s.cohort,
                   pg_catalog.date_bin('1 minute'::interval, s.bucket_start,
                                       '2000-01-01 00:00:00+00'::timestamptz) as minute,
                   pg_catalog.count(*) as buckets,
                   pg_catalog.count(s.numerator) as numerators,
                   pg_catalog.sum(s.numerator)::numeric as numerator_sum,
                   pg_catalog.count(s.denominator) as denominators,
                   pg_catalog.sum(s.denominator)::numeric as denominator_sum,
                   pg_catalog.max(s.bucket_start) as newest,
                   pg_catalog.min(s.bucket_start) as oldest
              from new_samples as s
             group by s.metric, s.cohort, minute
        ), opened as (
            insert into chat_v11.metric_minute as m (
                metric, cohort, minute, buckets, numerators, numerator_sum, denominators, denominator_sum, newest,
                oldest
            )
            select n.metric, n.cohort, n.minute, n.buckets, n.numerators, n.numerator_sum, n.denominators,
                   n.denominator_sum, n.newest, n.oldest
              from n
             order by n.metric collate "C", n.cohort, n.minute
                on conflict (metric, cohort, minute) do update set buckets = m.buckets where false
            returning m.metric, m.cohort, m.minute
        )
        select array_agg(n.metric), array_agg(n.cohort), array_agg(n.minute)
          into v_metric, v_cohort, v_minute
          from n
         where not exists (
             select from opened as o where o.metric = n.metric and o.cohort = n.cohort and o.minute = n.minute
         );
    elsif tg_op = 'DELETE' then
        select array_agg(k.metric), array_agg(k.cohort), array_agg(k.minute)
          into v_metric, v_cohort, v_minute
          from (select distinct o.metric, o.cohort,
                       pg_catalog.date_bin('1 minute'::interval, o.bucket_start,
                                           '2000-01-01 00:00:00+00'::timestamptz) as minute
                  from old_samples as o) as k;
    else
        select array_agg(k.metric), array_agg(k.cohort), array_agg(k.minute)
          into v_metric, v_cohort, v_minute
          from (select n.metric, n.cohort,
                       pg_catalog.date_bin('1 minute'::interval, n.bucket_start,
                                           '2000-01-01 00:00:00+00'::timestamptz) as minute
                  from new_samples as n
                union
                select o.metric, o.cohort,
                       pg_catalog.date_bin('1 minute'::interval, o.bucket_start,
                                           '2000-01-01 00:00:00+00'::timestamptz) as minute
                  from old_samples as o) as k;
    end if;
    if v_metric is not null then
        perform chat_v11.refresh_sample_minutes(v_metric, v_cohort, v_minute);
    end if;
    return null;
end
$$;

revoke all on function chat_v11.sample_minutes_changed() from public;
comment on function chat_v11.sample_minutes_changed() is
'Statement trigger of chat_v11.metric_sample: recounts the per-minute totals of every minute the statement '
'inserted, updated or deleted samples in (transition tables new_samples, old_samples); a minute an INSERT opens '
'takes the statement''s own totals.';
