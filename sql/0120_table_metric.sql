-- The metric catalog: every release-gate check and the rule that judges it (SPEC 4.4, 4.6.1).
create table chat_v11.metric (
    metric text not null,
    -- squawk-ignore prefer-bigint-over-int -- ordinal only ranks a handful of checks
    ordinal integer not null,
    kind text not null,
    severity text not null,
    rule text not null,
    window_length interval not null,
    freshness interval not null,
    min_volume numeric not null,
    factor numeric,
    slack numeric,
    threshold numeric,
    alpha numeric,
    static_baseline numeric,
    description text not null,
    constraint metric_pkey primary key (metric),
    constraint metric_ordinal_unique unique (ordinal),
    constraint metric_kind_valid check (kind in ('rate', 'count', 'latency_ms')),
    constraint metric_severity_valid check (severity in ('P0', 'P1')),
    constraint metric_rule_valid check (
        rule in ('zero', 'threshold', 'no_new', 'baseline_ratio')
    ),
    constraint metric_window_positive check (window_length > interval '0'),
    constraint metric_freshness_positive check (freshness > interval '0'),
    constraint metric_min_volume_not_negative check (min_volume >= 0),
    constraint metric_rule_settings_valid check (
        (rule <> 'threshold' or threshold is not null)
        and (rule <> 'baseline_ratio' or factor is not null)
        and (factor is null or factor >= 1)
        and (slack is null or slack >= 0)
        and (alpha is null or (alpha > 0 and alpha < 0.5))
        and (static_baseline is null or static_baseline >= 0)
    )
);

comment on table chat_v11.metric is
'Metric catalog with the playbook''s metric names and the rule of each release-gate check.';

insert into chat_v11.metric (
    metric, ordinal, kind, severity, rule, window_length, freshness, min_volume,
    factor, slack, threshold, alpha, static_baseline, description
) values
(
    'ack_without_receipt_10s_rate', 1, 'rate', 'P0', 'zero',
    interval '15 minutes', interval '2 minutes', 1, null, null, 0, null, null,
    'ACK accepted|duplicate without a receipt within 10 s: must be exactly 0 over all cohorts.'
),
(
    'timeline_duplicate_detected_rate', 2, 'rate', 'P0', 'zero',
    interval '15 minutes', interval '2 minutes', 1, null, null, 0, null, null,
    'Duplicate timeline entries detected: must be exactly 0 over all cohorts.'
),
(
    'read_rollback_detected_rate', 3, 'rate', 'P0', 'zero',
    interval '15 minutes', interval '2 minutes', 1, null, null, 0, null, null,
    'Read position rolled back: must be exactly 0 over all cohorts.'
),
(
    'send_stall_rate', 4, 'rate', 'P0', 'threshold',
    interval '15 minutes', interval '2 minutes', 1, null, null, 0.01, null, null,
    'Mass user-facing send stall: at most the threshold in every cohort.'
),
(
    'pending_forever_count', 5, 'count', 'P0', 'no_new',
    interval '15 minutes', interval '2 minutes', 1, null, null, 0, null, null,
    'Messages pending forever: no new ones in the window.'
),
(
    'resync_range_unavailable_rate', 6, 'rate', 'P1', 'baseline_ratio',
    interval '30 minutes', interval '2 minutes', 1000, 1.5, 0.001, null, 0.01, null,
    'ERR_RESYNC_RANGE_UNAVAILABLE: canary at most baseline x factor + slack.'
),
(
    'full_state_rate', 7, 'rate', 'P1', 'baseline_ratio',
    interval '30 minutes', interval '2 minutes', 1000, 1.5, 0.001, null, 0.01, null,
    'Full-state dialog loads: canary at most baseline x factor + slack.'
),
(
    'forced_resync_rate', 8, 'rate', 'P1', 'baseline_ratio',
    interval '30 minutes', interval '2 minutes', 1000, 1.5, 0.001, null, 0.01, null,
    'Forced resyncs: canary at most baseline x factor + slack.'
),
(
    'recovery_p95_ms', 9, 'latency_ms', 'P1', 'baseline_ratio',
    interval '30 minutes', interval '2 minutes', 10, 1.2, 0, null, null, null,
    'p95 recovery time: canary median of bucket p95 at most baseline x factor.'
);
