-- Daily partitions of the metric store from yesterday to a week ahead (UTC); the guardrails keep them ahead.
select chat_v11.ensure_sample_partitions(
    (pg_catalog.now() at time zone 'UTC')::date - 1,
    (pg_catalog.now() at time zone 'UTC')::date + 7
);
