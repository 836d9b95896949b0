-- A user's bucket (SPEC 8): the first 4 bytes of sha256(convert_to(salt || ':' || user_key, 'UTF8')) read as an
-- unsigned big-endian integer, mod 10000. The key is hashed as given (no trim, no case folding, no Unicode
-- normalization); src/chat_rollout/client/assignment.py is the same function in Python and
-- docs/assignment-vectors.json holds the vectors both are checked against.
create or replace function chat_v11.assignment_bucket(p_salt text, p_user_key text)
returns integer
language sql
immutable
strict
parallel safe
set search_path = pg_catalog, pg_temp
as $$
    select (((pg_catalog.get_byte(d.h, 0)::bigint << 24)
             | (pg_catalog.get_byte(d.h, 1)::bigint << 16)
             | (pg_catalog.get_byte(d.h, 2)::bigint << 8)
             | pg_catalog.get_byte(d.h, 3)::bigint) % 10000)::integer
      from (select pg_catalog.sha256(pg_catalog.convert_to(p_salt || ':' || p_user_key, 'UTF8')) as h) as d
$$;

revoke all on function chat_v11.assignment_bucket(text, text) from public;
comment on function chat_v11.assignment_bucket(text, text) is
'A user''s bucket 0-9999: first 4 bytes of sha256(salt || '':'' || user_key) (UTF-8), unsigned big-endian, mod 10000.';
