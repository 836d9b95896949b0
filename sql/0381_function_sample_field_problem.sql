-- What keeps a well-shaped ingestion sample (chat_v11.sample_shape_problem found nothing) from being read as typed
-- values, naming the field, or null: a bucket_start that is no real timestamp, a count written with a decimal point
-- or an exponent (1.0), a value a double precision cannot hold (1e-400). Slow path only: one cast per field.
create or replace function chat_v11.sample_field_problem(p_sample jsonb)
returns text
language plpgsql
stable
as $$
declare
    v_field text;
begin
    if not chat_v11.is_timestamptz(p_sample ->> 'bucket_start') then
        return pg_catalog.format('bucket_start %s is not a valid timestamp',
                                 chat_v11.shown(p_sample ->> 'bucket_start'));
    end if;
    foreach v_field in array array['numerator', 'denominator'] loop
        begin
            perform (p_sample ->> v_field)::bigint;
        exception when data_exception then
            return pg_catalog.format('%s %s is a count: write it as a whole number, without a decimal point or '
                                     || 'an exponent (1, not 1.0)', v_field, chat_v11.shown(p_sample ->> v_field));
        end;
    end loop;
    begin
        perform (p_sample ->> 'value')::double precision;
    exception when data_exception then
        return pg_catalog.format('value %s cannot be stored as a double precision number (too small: send 0)',
                                 chat_v11.shown(p_sample ->> 'value'));
    end;
    return null;
end
$$;

revoke all on function chat_v11.sample_field_problem(jsonb) from public;
comment on function chat_v11.sample_field_problem(jsonb) is
'Why a well-shaped ingestion sample cannot be read as typed values (bucket_start not a timestamp, a count written '
'as 1.0, a value beyond double precision), naming the field, or null. Slow path of sample validation.';
