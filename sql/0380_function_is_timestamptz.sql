-- True when a text is a valid timestamptz (used only to name a malformed sample).
create or replace function chat_v11.is_timestamptz(p_text text)
returns boolean
language plpgsql
stable
as $$
begin
    perform p_text::timestamptz;
    return true;
exception when others then
    return false;
end
$$;

revoke all on function chat_v11.is_timestamptz(text) from public;
comment on function chat_v11.is_timestamptz(text) is
'True when the text casts to timestamptz (slow path of sample validation).';
