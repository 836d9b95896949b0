-- Per-minute totals of the metric samples, kept exact by the statement triggers on chat_v11.metric_sample (sql/0266)
-- and by the retention (chat_v11.prune_samples): one row per (metric, cohort, UTC minute) that holds samples. A gate
-- window reads its whole minutes here and only the buckets of its two partial minutes from the samples
-- (chat_v11.window_totals), so its cost no longer follows the window's length. Derived data: rebuilt from the
-- samples at any time (chat_v11.refresh_sample_minutes).
create table chat_v11.metric_minute (
    metric text not null,
    cohort text not null,
    minute timestamptz not null, -- noqa: RF04
    buckets bigint not null,
    numerators bigint not null,
    numerator_sum numeric,
    denominators bigint not null,
    denominator_sum numeric,
    newest timestamptz,
    oldest timestamptz,
    constraint metric_minute_pkey primary key (metric, cohort, minute),
    constraint metric_minute_counts_valid check (
        buckets between 0 and 6 and numerators between 0 and buckets and denominators between 0 and buckets
    )
);

comment on table chat_v11.metric_minute is
'Per-minute totals of chat_v11.metric_sample (UTC minutes, date_bin from 2000-01-01 UTC): buckets, how many '
'numerators and denominators are not null and their sums, newest and oldest bucket. Kept exact by the triggers of '
'chat_v11.metric_sample and by the retention; read by the gate evaluation (chat_v11.window_totals).';
