-- Creates the missing daily partitions of chat_v11.metric_sample for the UTC days p_from .. p_to (at most 400 days),
-- named metric_sample_pYYYYMMDD, each covering [day 00:00 UTC, next day 00:00 UTC). Samples of such a day that
-- waited in the default partition move into the new partition first. A partition is created as a plain table and
-- then attached: ATTACH takes SHARE UPDATE EXCLUSIVE on the parent (ingestion and gate reads go on) and ACCESS
-- EXCLUSIVE only on the new table and on the default partition (kept small). Returns how many were created.
create or replace function chat_v11.ensure_sample_partitions(p_from date, p_to date)
returns integer
language plpgsql
volatile
as $$
declare
    v_day date;
    v_name text;
    v_lo text;
    v_hi text;
    v_created integer := 0;
begin
    if p_from is null or p_to is null or p_to < p_from or p_to - p_from > 400 then
        raise exception using
            errcode = 'RO011',
            message = 'partition days must be a range of 1 to 401 days',
            detail = pg_catalog.format('From %s to %s.', coalesce(p_from::text, 'null'), coalesce(p_to::text, 'null')),
            hint = 'Pass the first and the last UTC day, for example current_date - 1 and current_date + 7.';
    end if;
    v_day := p_from;
    while v_day <= p_to loop
        v_name := 'metric_sample_p' || pg_catalog.to_char(v_day, 'YYYYMMDD');
        if pg_catalog.to_regclass('chat_v11.' || v_name) is null then
            v_lo := pg_catalog.to_char(v_day, 'YYYY-MM-DD') || ' 00:00:00+00';
            v_hi := pg_catalog.to_char(v_day + 1, 'YYYY-MM-DD') || ' 00:00:00+00';
            execute pg_catalog.format(
                'create table chat_v11.%I (like chat_v11.metric_sample including defaults including constraints)',
                v_name
            );
            execute pg_catalog.format(
                'with moved as (delete from chat_v11.metric_sample_default as d '
                || 'where d.bucket_start >= %L::timestamptz and d.bucket_start < %L::timestamptz returning d.*) '
                || 'insert into chat_v11.%I select * from moved',
                v_lo, v_hi, v_name
            );
            execute pg_catalog.format(
                'alter table chat_v11.metric_sample attach partition chat_v11.%I for values from (%L) to (%L)',
                v_name, v_lo, v_hi
            );
            execute pg_catalog.format(
                'comment on table chat_v11.%I is %L',
                v_name, 'Metric samples of the UTC day ' || pg_catalog.to_char(v_day, 'YYYY-MM-DD')
                || ' (a partition of chat_v11.metric_sample, dropped whole by the retention policy).'
            );
            v_created := v_created + 1;
        end if;
        v_day := v_day + 1;
    end loop;
    return v_created;
end
$$;

revoke all on function chat_v11.ensure_sample_partitions(date, date) from public;
comment on function chat_v11.ensure_sample_partitions(date, date) is
'Creates the missing daily partitions of chat_v11.metric_sample for the UTC days p_from .. p_to, moving samples of '
'those days out of the default partition. Returns the number created. Run by public.chat_run_v11_maintenance() '
'and the migration.';
