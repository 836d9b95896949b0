-- The transaction ids that may hold a row lock: the row's xmax, and its members when it is a MultiXactId
-- (a row locked in a subtransaction and then updated carries a MultiXactId).
create or replace function chat_v11.xmax_holders(p_xmax xid)
returns setof xid
language plpgsql
volatile
as $$
begin
    if p_xmax is null then
        return;
    end if;
    return next p_xmax;
    begin
        return query select m.xid from pg_catalog.pg_get_multixact_members(p_xmax) as m;
    exception when others then
        return;  -- not a MultiXactId (or no longer one): the plain xid above is the answer
    end;
end
$$;

revoke all on function chat_v11.xmax_holders(xid) from public;
comment on function chat_v11.xmax_holders(xid) is
'Transaction ids that may hold a row lock: the xmax itself and, if it is a MultiXactId, its members.';
