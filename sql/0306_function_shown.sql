-- An argument as a refusal quotes it: quoted, at most 100 characters (the length said), or null.
create or replace function chat_v11.shown(p_value text)
returns text
language sql
immutable
as $$
    select coalesce(
        case
            when pg_catalog.char_length(p_value) > 100
                then pg_catalog.quote_literal(pg_catalog.left(p_value, 100))
                    || format('... (%s characters)', pg_catalog.char_length(p_value))
            else pg_catalog.quote_literal(p_value)
        end,
        'null'
    )
$$;

revoke all on function chat_v11.shown(text) from public;
comment on function chat_v11.shown(text) is
'Quotes an argument for a message: at most 100 characters with the full length said, or null.';
