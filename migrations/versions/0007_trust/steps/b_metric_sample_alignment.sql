-- covers: sql/0160_table_metric_sample.sql
-- Revision 0007: buckets are aligned to 10 seconds in UTC, whatever the session's TimeZone. The old constraint
-- (date_trunc and extract(second), both read in the session's TimeZone) accepted or refused a bucket by its offset.
-- Added NOT VALID (no scan under the lock), validated (a scan under SHARE UPDATE EXCLUSIVE), then the old one goes;
-- lock_timeout is the migration's (migrations/env.py). A stored bucket fails only if it was written in a TimeZone
-- whose offset then was not a whole number of 10 seconds (local mean time, before about 1970): retention pruned such
-- buckets long ago; should one be left, VALIDATE fails and the upgrade changes nothing.
alter table chat_v11.metric_sample add constraint metric_sample_bucket_aligned_utc check (
    pg_catalog.date_bin('10 seconds'::interval, bucket_start, '2000-01-01 00:00:00+00'::timestamptz) = bucket_start
) not valid;

-- One transaction (migrations/env.py) by design: one scan of the samples (bounded by retention) while gate reads of
-- samples wait; a state call's own path does not read this table.
-- squawk-ignore constraint-missing-not-valid -- see above
alter table chat_v11.metric_sample validate constraint metric_sample_bucket_aligned_utc;

-- squawk-ignore ban-drop-constraint -- replaced above by metric_sample_bucket_aligned_utc: the same guarantee, in UTC
alter table chat_v11.metric_sample drop constraint metric_sample_bucket_aligned;
