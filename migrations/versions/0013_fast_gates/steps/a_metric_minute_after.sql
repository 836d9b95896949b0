-- phase: after
-- Revision 0013: the per-minute totals of the samples already stored (derived data, rebuilt from the samples). The
-- statement triggers of chat_v11.metric_sample exist by now and CREATE TRIGGER took the table in SHARE ROW EXCLUSIVE
-- mode, which it keeps until this migration commits: no batch writes in between, so the totals are exact.
insert into chat_v11.metric_minute as m (
    metric, cohort, minute, buckets, numerators, numerator_sum, denominators, denominator_sum, newest, oldest
)
select s.metric, s.cohort,
       pg_catalog.date_bin('1 minute'::interval, s.bucket_start, '2000-01-01 00:00:00+00'::timestamptz) as minute,
       pg_catalog.count(*),
       pg_catalog.count(s.numerator),
       pg_catalog.sum(s.numerator)::numeric,
       pg_catalog.count(s.denominator),
       pg_catalog.sum(s.denominator)::numeric,
       pg_catalog.max(s.bucket_start),
       pg_catalog.min(s.bucket_start)
  from chat_v11.metric_sample as s
 group by s.metric, s.cohort, minute;
