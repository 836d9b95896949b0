-- Validates a reason (required, trimmed, 1-500 characters, any Unicode, at least one visible character: not only
-- white space, control or invisible format characters, chat_v11.is_blank) and returns it trimmed.
create or replace function chat_v11.checked_reason(p_reason text)
returns text
language plpgsql
stable
as $$
declare
    v_reason text := pg_catalog.regexp_replace(
        p_reason,
        '^[[:space:]\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]+'
        || '|[[:space:]\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]+$',
        '', 'g'
    );
begin
    if v_reason is null or chat_v11.is_blank(v_reason) or pg_catalog.char_length(v_reason) > 500 then
        raise exception using
            errcode = 'RO001',
            message = 'a reason is required: 1 to 500 characters after trimming',
            detail = case
                when p_reason is null then 'The reason is null.'
                when v_reason = '' then 'The reason is empty or only white space.'
                when chat_v11.is_blank(v_reason) then format(
                    'The reason has %s characters, none visible: only white space, control or invisible format '
                    || 'characters (such as U+200B, U+200D, U+00AD, U+2060).', pg_catalog.char_length(v_reason))
                else format('The reason has %s characters.', pg_catalog.char_length(v_reason))
            end,
            hint = 'Say why in a few words, for example ''incident P0'' or ''hold''; the reason is kept in the history.';
    end if;
    return v_reason;
end
$$;

revoke all on function chat_v11.checked_reason(text) from public;
comment on function chat_v11.checked_reason(text) is
'Returns the trimmed reason or raises RO001 when it is missing, blank (only white space, control or invisible format '
'characters) or longer than 500 characters.';
