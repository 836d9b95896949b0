-- Append-only audit of configuration changes (stages, stage policies, policies, metric rules, metric sources).
create table chat_v11.config_change (
    change_id bigint generated always as identity,
    changed_at timestamptz not null default pg_catalog.clock_timestamp(),
    changed_by text not null default session_user,
    actor text,
    target text not null,
    target_key text not null,
    old_value jsonb,
    new_value jsonb not null,
    constraint config_change_pkey primary key (change_id),
    constraint config_change_target_valid check (
        target in ('stage', 'policy', 'metric_rule', 'metric_source', 'stage_policy')
    )
);

comment on table chat_v11.config_change is
'Who changed which stage setting, stage policy, policy, metric rule or metric source, when, from what to what. '
'Append-only.';
