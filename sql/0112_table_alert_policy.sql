-- The rollout policy alert_source (SPEC 7, "Active alerts"), set like every policy with
-- public.chat_set_v11_policy('alert_source', '{"required": ..., "max_age": ...}') and audited as one, but kept in a
-- table of its own: adding a key to chat_v11.policy would alter that table, and a state call holds a lock on it
-- while it waits for the state row a migration holds (chat_v11.start_lock_budget): the two would deadlock.
-- Not required by default, so every database decides exactly as before until an admin turns it on.
create table chat_v11.alert_policy (
    key text not null default 'alert_source',
    value jsonb not null,
    description text not null,
    changed_at timestamptz not null default pg_catalog.now(),
    changed_by text not null default session_user,
    constraint alert_policy_pkey primary key (key),
    constraint alert_policy_key_known check (key = 'alert_source'),
    constraint alert_policy_value_valid check (
        pg_catalog.jsonb_typeof(value -> 'required') = 'boolean'
        and pg_catalog.jsonb_typeof(value -> 'max_age') = 'string'
    )
);

comment on table chat_v11.alert_policy is
'The policy alert_source: whether the Go/No-Go requires a fresh, reachable Alertmanager read, and how fresh. '
'Change with public.chat_set_v11_policy(); every change is kept in chat_v11.config_change.';

insert into chat_v11.alert_policy (key, value, description) values (
    'alert_source', '{"required": false, "max_age": "2 minutes"}',
    'Whether the Go/No-Go requires a fresh, reachable read of Alertmanager (max_age 30 seconds - 1 hour).'
);
