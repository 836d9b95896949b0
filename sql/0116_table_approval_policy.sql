-- The rollout policy approval_ttl (SPEC 9): how long an approval counts at most. Set like every policy with
-- public.chat_set_v11_policy('approval_ttl', '"24 hours"') and audited as one, but kept in a table of its own: adding
-- a key to chat_v11.policy would alter that table, and a state call holds a lock on it while it waits for the state
-- row a migration holds (chat_v11.start_lock_budget): the two would deadlock (as sql/0112_table_alert_policy.sql).
create table chat_v11.approval_policy (
    key text not null default 'approval_ttl',
    value jsonb not null,
    description text not null,
    changed_at timestamptz not null default pg_catalog.now(),
    changed_by text not null default session_user,
    constraint approval_policy_pkey primary key (key),
    constraint approval_policy_key_known check (key = 'approval_ttl'),
    constraint approval_policy_value_valid check (pg_catalog.jsonb_typeof(value) = 'string')
);

comment on table chat_v11.approval_policy is
'The policy approval_ttl: how long a promotion approval counts at most (5 minutes - 7 days, default 24 hours). '
'Change with public.chat_set_v11_policy(); every change is kept in chat_v11.config_change.';

insert into chat_v11.approval_policy (key, value, description) values (
    'approval_ttl', '"24 hours"',
    'How long a promotion approval counts at most (5 minutes - 7 days); a stage or kill switch change voids it sooner.'
);
