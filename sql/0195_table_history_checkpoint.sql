-- Checkpoints of the verified rollout history: where an incremental chat_verify_v11_history() starts, and the state
-- row's xmin each one saw (an acknowledged state row rewritten outside a transition: a migration or a restore).
create table chat_v11.history_checkpoint (
    checkpoint_id bigint generated always as identity,
    version bigint not null,
    hash text not null,
    state_xmin xid,
    walked_from bigint,
    verified_at timestamptz not null default pg_catalog.clock_timestamp(),
    verified_by text not null default session_user,
    constraint history_checkpoint_pkey primary key (checkpoint_id),
    constraint history_checkpoint_version_positive check (version >= 1),
    constraint history_checkpoint_hash_format check (hash ~ '^[0-9a-f]{64}$'),
    constraint history_checkpoint_walk check (walked_from is null or walked_from between 1 and version)
);

comment on table chat_v11.history_checkpoint is
'History versions a verify run found intact (walked_from: the first version it walked; null: an acknowledgement of the '
'state row''s xmin, written by a migration). Append-only; written by public.chat_checkpoint_v11_history().';
