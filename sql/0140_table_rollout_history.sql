-- Append-only, hash-chained history: one row per accepted state call (SPEC 4.3).
create table chat_v11.rollout_history (
    version bigint not null,
    changed_at timestamptz not null,
    changed_by text not null,
    actor text,
    action text not null,
    from_stage text,
    to_stage text not null,
    from_kill_switch boolean,
    to_kill_switch boolean not null,
    promotion_frozen boolean not null,
    reason text not null,
    note text,
    gate_snapshot jsonb,
    incident_id bigint,
    prev_hash text not null,
    hash text not null,
    constraint rollout_history_pkey primary key (version),
    constraint rollout_history_action_valid check (
        action in ('init', 'promote', 'rollback', 'hold', 'kill', 'resume', 'unfreeze', 'auto_kill', 'auto_promote')
    ),
    constraint rollout_history_version_positive check (version >= 1),
    constraint rollout_history_hash_format check (hash ~ '^[0-9a-f]{64}$' and prev_hash ~ '^[0-9a-f]{64}$')
);

comment on table chat_v11.rollout_history is
'Append-only rollout history; hash = sha256(prev_hash || canonical row). Check with public.chat_verify_v11_history().';
