-- Downgrade of revision 0007, bucket alignment: the constraint of revision 0005 comes back, validated in UTC (so it
-- accepts exactly the rows the UTC constraint accepted; the session's TimeZone is back to its default afterwards),
-- then the UTC one goes. No data is touched; the restored sample_problem (sql/0375) tests alignment as it did.
set local timezone = 'UTC';
alter table chat_v11.metric_sample add constraint metric_sample_bucket_aligned check (
    pg_catalog.date_trunc('second', bucket_start) = bucket_start
    and extract(second from bucket_start)::integer % 10 = 0
) not valid;
-- squawk-ignore constraint-missing-not-valid -- the downgrade is one transaction: one scan of the samples
alter table chat_v11.metric_sample validate constraint metric_sample_bucket_aligned;
alter table chat_v11.metric_sample drop constraint metric_sample_bucket_aligned_utc;
set local timezone to default;
-- PART 2 (after the restores: no restored body calls them): the two helpers this revision added for input checks.
drop function chat_v11.sample_field_problem(jsonb);
drop function chat_v11.is_blank(text);
