-- True when a text shows nothing: null, or only white space (Zs, Zl, Zp), controls (Cc), format characters (Cf)
-- and the other default-ignorable code points (variation selectors, Hangul fillers, tags). Any other character counts.
create or replace function chat_v11.is_blank(p_text text)
returns boolean
language sql
immutable
as $$
    select p_text is null or p_text !~ (
        '[^\u0001-\u0020\u007f-\u00a0\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160'
        || '\u1680\u17b4\u17b5\u180b-\u180f\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\u3164\ufe00-\ufe0f'
        || '\ufeff\uffa0\ufff0-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3'
        || '\U0001d173-\U0001d17a\U000e0000-\U000e0fff]'
    )
$$;

revoke all on function chat_v11.is_blank(text) from public;
comment on function chat_v11.is_blank(text) is
'True when the text is null or shows nothing: only white space, control characters (Cc), format characters (Cf) '
'or other default-ignorable code points. Real text in any script, emoji included, is not blank.';
