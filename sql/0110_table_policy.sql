-- Rollout policies (auto_kill, p0_exit_window, state_lock_timeout, retention), one row per key.
create table chat_v11.policy (
    key text not null,
    value jsonb not null,
    description text not null,
    changed_at timestamptz not null default pg_catalog.now(),
    changed_by text not null default session_user,
    constraint policy_pkey primary key (key),
    constraint policy_key_known check (
        key in ('auto_kill', 'p0_exit_window', 'state_lock_timeout', 'retention')
    )
);

comment on table chat_v11.policy is
'Rollout policies. Change with public.chat_set_v11_policy(); every change is kept in chat_v11.config_change.';

insert into chat_v11.policy (key, value, description) values
(
    'auto_kill', 'true',
    'A P0 failure arriving with metric data engages the kill switch in the same transaction.'
),
(
    'p0_exit_window', '"30 minutes"',
    'How long every P0 check must pass before a controlled resume (30-60 minutes).'
),
(
    'state_lock_timeout', '"2 seconds"',
    'How long a state change waits for the state row before it fails naming the blocker.'
),
(
    'retention', '"30 days"',
    'How long metric samples are kept.'
);
