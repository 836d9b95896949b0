-- Trigger function: refuses UPDATE, DELETE and TRUNCATE of an append-only audit table, for every role.
create or replace function chat_v11.refuse_history_change()
returns trigger
language plpgsql
set search_path = pg_catalog, chat_v11, pg_temp
as $$
begin
    raise exception using
        errcode = 'RO012',
        message = format('%s on %s is refused: the table is append-only', tg_op, tg_table_name),
        detail = 'Audit rows of chat-rollout are never changed or removed, not even by the owner.',
        hint = 'Record a new decision through the public chat_*_v11_* functions instead.';
end
$$;

revoke all on function chat_v11.refuse_history_change() from public;
comment on function chat_v11.refuse_history_change() is
'Trigger: refuses UPDATE, DELETE and TRUNCATE on append-only audit tables (SQLSTATE RO012).';
