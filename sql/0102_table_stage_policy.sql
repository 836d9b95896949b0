-- Progression policy per stage (SPEC 9), keyed by the stage promoted INTO: auto_promote lets
-- public.chat_run_v11_progression() promote into it by itself, approvals_required is how many approvals (four eyes)
-- a promotion into it needs. A stage without a row has the defaults (false, 0), so every database decides exactly
-- as before until an admin sets a policy. A table of its own, not columns of chat_v11.stage: state calls hold that
-- table's rows while they wait for the state row a migration holds.
create table chat_v11.stage_policy (
    stage text not null,
    auto_promote boolean not null default false,
    -- squawk-ignore prefer-bigint-over-int -- at most 10 approvals
    approvals_required integer not null default 0,
    changed_at timestamptz not null default pg_catalog.clock_timestamp(),
    changed_by text not null default session_user,
    constraint stage_policy_pkey primary key (stage),
    constraint stage_policy_stage_fkey foreign key (stage) references chat_v11.stage (stage),
    constraint stage_policy_approvals_range check (approvals_required between 0 and 10)
);

comment on table chat_v11.stage_policy is
'Progression policy of promoting into a stage: auto_promote (default false), approvals_required (0-10, default 0); '
'no row means the defaults. Change with public.chat_set_v11_stage_policy(); audited in chat_v11.config_change.';
