-- The rollout state: exactly one row, changed only by the state functions under a row lock.
create table chat_v11.rollout_state (
    singleton boolean not null default true,
    stage text not null,
    kill_switch boolean not null,
    promotion_frozen boolean not null,
    reason text not null,
    changed_by text not null,
    actor text,
    changed_at timestamptz not null,
    version bigint not null,
    constraint rollout_state_pkey primary key (singleton),
    constraint rollout_state_single_row check (singleton),
    constraint rollout_state_stage_fkey foreign key (stage) references chat_v11.stage (stage),
    constraint rollout_state_version_positive check (version >= 1)
);

comment on table chat_v11.rollout_state is
'The single rollout state row. Read with public.chat_get_v11_rollout_state().';
