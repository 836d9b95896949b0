-- The salt in effect (SPEC 8), for applications that compute assignments locally (chat_rollout.client): readers
-- cannot read chat_v11, and the salt is not a secret (it only spreads users over buckets).
create or replace function public.chat_get_v11_assignment_policy()
returns table (
    salt text,
    changed_at timestamptz,
    changed_by text
)
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    select p.value #>> '{}', p.changed_at, p.changed_by
      from chat_v11.assignment_policy as p
     where p.key = 'assignment_salt'
$$;

revoke all on function public.chat_get_v11_assignment_policy() from public;
grant execute on function public.chat_get_v11_assignment_policy() to chat_rollout_reader;
comment on function public.chat_get_v11_assignment_policy() is
'Reader: the assignment salt in effect (policy assignment_salt), when and by whom it was set. Read-only. A change '
'is announced with NOTIFY chat_v11_assignment (payload: salt, changed_at).';
