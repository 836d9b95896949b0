-- Approvals of a promotion (SPEC 9, four eyes): append-only and hash-chained like the rollout history. Each row
-- names the stage it approves promoting into, who approved (session_user, never the claimed actor instead), the
-- claimed actor beside it, when and why, and the state version it saw with that version's history hash (so an
-- approval is bound to the history it approved). Validity is computed, never stored: chat_v11.valid_approvals().
create table chat_v11.promotion_approval (
    approval_id bigint not null,
    approved_at timestamptz not null,
    approved_by text not null,
    actor text,
    stage text not null,
    from_stage text not null,
    state_version bigint not null,
    history_hash text not null,
    reason text not null,
    prev_hash text not null,
    hash text not null,
    constraint promotion_approval_pkey primary key (approval_id),
    constraint promotion_approval_id_positive check (approval_id >= 1),
    constraint promotion_approval_hash_format check (
        hash ~ '^[0-9a-f]{64}$' and prev_hash ~ '^[0-9a-f]{64}$' and history_hash ~ '^[0-9a-f]{64}$'
    )
);

comment on table chat_v11.promotion_approval is
'Append-only approvals of promotions; hash = sha256(prev_hash || canonical row). Written by '
'public.chat_approve_v11_promotion(); valid ones listed by public.chat_get_v11_approvals().';
