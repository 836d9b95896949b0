-- Retention without bulk DELETE: every daily partition whose whole day is older than p_cutoff is dropped whole; only
-- the day that straddles p_cutoff and the default partition lose rows one by one (a few buckets a run when the
-- guardrails run every few seconds). Returns the partitions dropped and the rows deleted.
create or replace function chat_v11.prune_samples(p_cutoff timestamptz)
returns table (dropped text[], deleted bigint)
language plpgsql
volatile
as $$
declare
    v_part record;
    v_dropped text[] := '{}';
    v_deleted bigint := 0;
    v_n bigint;
    v_cutoff_day date := (p_cutoff at time zone 'UTC')::date;
    v_minute timestamptz;
    v_metrics text[];
    v_cohorts text[];
    v_minutes timestamptz[];
begin
    for v_part in
        select c.relname
          from pg_catalog.pg_inherits as i
          join pg_catalog.pg_class as c on c.oid = i.inhrelid
         where i.inhparent = 'chat_v11.metric_sample'::regclass
           and c.relname ~ '^metric_sample_p[0-9]{8}$'
           and pg_catalog.to_date(pg_catalog.substr(c.relname, 16), 'YYYYMMDD') < v_cutoff_day
         order by c.relname
    loop
        execute pg_catalog.format('drop table chat_v11.%I', v_part.relname);
        v_dropped := v_dropped || v_part.relname::text;
    end loop;
    -- the straddling day: rows before the cutoff (its partition, when it exists, is the only one scanned)
    delete from chat_v11.metric_sample as s
     where s.bucket_start >= (v_cutoff_day::timestamp at time zone 'UTC')
       and s.bucket_start < p_cutoff;
    get diagnostics v_n = row_count;
    v_deleted := v_deleted + v_n;
    delete from chat_v11.metric_sample_default as d where d.bucket_start < p_cutoff;
    get diagnostics v_n = row_count;
    v_deleted := v_deleted + v_n;
    -- the per-minute totals follow (dropped partitions and the default partition fire no trigger of the parent):
    -- every minute wholly before the cutoff goes (one range of the key per metric and cohort), the minute holding
    -- the cutoff is recounted from the samples left
    v_minute := pg_catalog.date_bin('1 minute'::interval, p_cutoff, '2000-01-01 00:00:00+00'::timestamptz);
    delete from chat_v11.metric_minute as m
     using chat_v11.metric as x
     cross join (values ('canary'), ('control')) as c (cohort)
     where m.metric = x.metric and m.cohort = c.cohort and m.minute < v_minute;
    select array_agg(m.metric), array_agg(m.cohort), array_agg(m.minute)
      into v_metrics, v_cohorts, v_minutes
      from chat_v11.metric as x
     cross join (values ('canary'), ('control')) as c (cohort)
      join chat_v11.metric_minute as m on m.metric = x.metric and m.cohort = c.cohort and m.minute = v_minute;
    if v_metrics is not null then
        perform chat_v11.refresh_sample_minutes(v_metrics, v_cohorts, v_minutes);
    end if;
    return query select v_dropped, v_deleted;
end
$$;

revoke all on function chat_v11.prune_samples(timestamptz) from public;
comment on function chat_v11.prune_samples(timestamptz) is
'Retention: drops every daily partition of chat_v11.metric_sample older than the cutoff day, deletes the rows before '
'the cutoff in the straddling day and in the default partition, and the per-minute totals before the cutoff '
'(chat_v11.metric_minute, the cutoff''s minute recounted). Returns the partitions dropped and rows deleted.';
