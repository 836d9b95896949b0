-- Downgrade of revision 0011: back to 0010, without assignments and the assignment salt.
-- GUARD: a salt other than the default is a decision an admin made (it decides who is in the canary): operator
-- data, dropped only when confirmed with alembic -x drop_data=yes downgrade 0010 (which sets chat_rollout.drop_data
-- for this transaction). Its audit rows stay: target policy fits the 0010 check.
do $guard$
declare
    v_salt text;
begin
    select p.value #>> '{}' into v_salt from chat_v11.assignment_policy as p where p.key = 'assignment_salt';
    if v_salt is distinct from 'chat_v11'
       and coalesce(pg_catalog.current_setting('chat_rollout.drop_data', true), '') <> 'yes' then
        raise exception using
            errcode = 'RO013',
            message = 'downgrade refused: it would drop operator data',
            detail = pg_catalog.format('The assignment salt was changed to %s; revision 0010 has no salt.', v_salt),
            hint = 'Note the salt first (select * from chat_get_v11_assignment_policy()), then confirm with: '
                || 'alembic -x drop_data=yes downgrade 0010';
    end if;
end
$guard$;

-- PART 2: after chat_set_v11_policy is back to its 0010 text, the new objects go
drop function public.chat_get_v11_assignment_policy();
drop function public.chat_get_v11_assignment(text);
drop function chat_v11.assignment_bucket(text, text);
drop table chat_v11.assignment_policy;
