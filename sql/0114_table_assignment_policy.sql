-- The rollout policy assignment_salt (SPEC 8): the salt of every user's bucket, set like every policy with
-- public.chat_set_v11_policy('assignment_salt', '"..."') and audited as one, kept in a table of its own for the
-- reason sql/0112_table_alert_policy.sql gives (adding a key to chat_v11.policy would alter a table state calls
-- read while a migration holds the state row). The default reproduces docs/assignment-vectors.json.
create table chat_v11.assignment_policy (
    key text not null default 'assignment_salt',
    value jsonb not null,
    description text not null,
    changed_at timestamptz not null default pg_catalog.now(),
    changed_by text not null default session_user,
    constraint assignment_policy_pkey primary key (key),
    constraint assignment_policy_key_known check (key = 'assignment_salt'),
    constraint assignment_policy_value_valid check (pg_catalog.jsonb_typeof(value) = 'string')
);

comment on table chat_v11.assignment_policy is
'The policy assignment_salt: the salt of every user''s bucket (public.chat_get_v11_assignment). Change with '
'public.chat_set_v11_policy(), only while no traffic is in the canary; every change is kept in chat_v11.config_change.';

insert into chat_v11.assignment_policy (key, value, description) values (
    'assignment_salt', '"chat_v11"',
    'The salt of every user''s bucket: sha256(salt || '':'' || user_key). '
    'Changes only while no traffic is in the canary.'
);
