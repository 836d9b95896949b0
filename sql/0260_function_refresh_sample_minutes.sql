-- Recounts the given (metric, cohort, UTC minute) rows of chat_v11.metric_minute from the samples: called by the
-- statement triggers of chat_v11.metric_sample (sql/0266) for every minute a statement touched, and by the retention.
-- Concurrent writers of one minute stay exact: the minute rows are locked first (inserted when new, in one key order
-- for every writer, so no deadlock), and the recount is a later statement with a new snapshot (READ COMMITTED), so it
-- sees every committed batch of those minutes; a writer that commits later recounts after it. Under REPEATABLE READ
-- a minute row changed since the snapshot raises 40001 (retry), never a lost count.
create or replace function chat_v11.refresh_sample_minutes(p_metric text[], p_cohort text[], p_minute timestamptz[])
returns void
language plpgsql
volatile
-- every read here is a key lookup (the samples of one minute, a minute row); a generic plan built while the day's
-- partition was empty would otherwise scan it whole for every minute of every later batch of the session
set enable_seqscan = off
as $$
begin
    insert into chat_v11.metric_minute as m (metric, cohort, minute, buckets, numerators, denominators)
    select k.metric, k.cohort, k.minute, 0, 0, 0
      from (select distinct u.metric, u.cohort, u.minute
              from unnest(p_metric, p_cohort, p_minute) as u (metric, cohort, minute)) as k
     order by k.metric collate "C", k.cohort, k.minute
        on conflict (metric, cohort, minute) do update set buckets = m.buckets where false;
    update chat_v11.metric_minute as m
       set buckets = r.buckets,
           numerators = r.numerators,
           numerator_sum = r.numerator_sum,
           denominators = r.denominators,
           denominator_sum = r.denominator_sum,
           newest = r.newest,
           oldest = r.oldest
      from (
          select k.metric, k.cohort, k.minute, t.*
            from (select distinct u.metric, u.cohort, u.minute
                    from unnest(p_metric, p_cohort, p_minute) as u (metric, cohort, minute)) as k
           cross join lateral (
               select pg_catalog.count(*) as buckets,
                      pg_catalog.count(s.numerator) as numerators,
                      pg_catalog.sum(s.numerator)::numeric as numerator_sum,
                      pg_catalog.count(s.denominator) as denominators,
                      pg_catalog.sum(s.denominator)::numeric as denominator_sum,
                      pg_catalog.max(s.bucket_start) as newest,
                      pg_catalog.min(s.bucket_start) as oldest
                 from chat_v11.metric_sample as s
                where s.metric = k.metric
                  and s.cohort = k.cohort
                  and s.bucket_start >= k.minute
                  and s.bucket_start < k.minute + interval '1 minute'
           ) as t
      ) as r
     where m.metric = r.metric and m.cohort = r.cohort and m.minute = r.minute;
    delete from chat_v11.metric_minute as m
     using unnest(p_metric, p_cohort, p_minute) as u (metric, cohort, minute)
     where m.metric = u.metric and m.cohort = u.cohort and m.minute = u.minute and m.buckets = 0;
end
$$;

revoke all on function chat_v11.refresh_sample_minutes(text[], text[], timestamptz[]) from public;
comment on function chat_v11.refresh_sample_minutes(text[], text[], timestamptz[]) is
'Recounts the per-minute totals (chat_v11.metric_minute) of the given metric, cohort and UTC minute from the samples; '
'a minute left without samples loses its row. Locks the minute rows first, so concurrent writers stay exact.';
