-- The rollout state: exactly one row, changed only by the state functions under a row lock.
-- traffic_percent is the current stage's percent, kept by triggers (sql/0516): the hot read path reads this one
-- table and joins nothing. It is the last column so a migrated database (0005 adds it) has the same column order.
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
    traffic_percent numeric(5, 2) not null,
    constraint rollout_state_pkey primary key (singleton),
    constraint rollout_state_single_row check (singleton),
    constraint rollout_state_stage_fkey foreign key (stage) references chat_v11.stage (stage),
    constraint rollout_state_version_positive check (version >= 1)
);

comment on table chat_v11.rollout_state is
'The single rollout state row. Read with public.chat_get_v11_rollout_state().';
comment on column chat_v11.rollout_state.traffic_percent is
'The current stage''s traffic percent (chat_v11.stage), kept right by triggers; the hot read path reads it here.';
