-- Every writing API function starts here: on a hot standby it refuses with 25006 and words an operator
-- understands; on the primary it makes the transaction commit durably (synchronous_commit on until it ends).
create or replace function chat_v11.begin_write(p_what text)
returns void
language plpgsql
volatile
as $$
begin
    if pg_catalog.pg_is_in_recovery() then
        raise exception using
            errcode = 'read_only_sql_transaction',
            message = format('%s must run on the primary: this server is a read-only hot standby', p_what),
            detail = 'Every chat_get_v11_* function answers here; state changes, metric writes, incidents and '
                || 'configuration go to the primary.',
            hint = 'Connect to the primary (or the promoted standby) and repeat the call.';
    end if;
    perform pg_catalog.set_config('synchronous_commit', 'on', true);
end
$$;

revoke all on function chat_v11.begin_write(text) from public;
comment on function chat_v11.begin_write(text) is
'Refuses a write on a hot standby (25006, with detail and hint) and makes the transaction commit durably.';
