-- The promotion approvals that count now (SPEC 9): the newest valid one per person, for the next stage only.
-- counts_for_you says whether it counts for a promotion by the caller (one's own approval never does).
create or replace function public.chat_get_v11_approvals()
returns table (
    approval_id bigint,
    stage text,
    from_stage text,
    approved_by text,
    actor text,
    approved_at timestamptz,
    expires_at timestamptz,
    state_version bigint,
    reason text,
    counts_for_you boolean,
    hash text
)
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    select a.approval_id, a.stage, a.from_stage, a.approved_by, a.actor, a.approved_at,
           a.approved_at + coalesce(
               (select (p.value #>> '{}')::interval from chat_v11.approval_policy as p where p.key = 'approval_ttl'),
               interval '24 hours'
           ),
           a.state_version, a.reason, a.approved_by <> session_user, a.hash
      from chat_v11.valid_approvals(pg_catalog.now()) as a
     order by a.approved_at, a.approval_id
$$;

revoke all on function public.chat_get_v11_approvals() from public;
grant execute on function public.chat_get_v11_approvals() to chat_rollout_reader;
comment on function public.chat_get_v11_approvals() is
'The promotion approvals that count now: the newest per person for the next stage, younger than approval_ttl, '
'with no stage or kill switch change since; counts_for_you is false for your own (never counted for your own '
'promotion). Read-only.';
