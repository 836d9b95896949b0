-- phase: after
-- Revision 0005: the samples of the unpartitioned table move into the daily partitions (one partition per UTC day
-- that holds samples younger than the retention policy; older ones wait in the default partition for the next
-- guardrails run to prune them), then the empty table is dropped. Nothing is lost: same transaction, and the row
-- counts are compared before the drop.
do $$
declare
    v_first date;
    v_today date := (pg_catalog.now() at time zone 'UTC')::date;
    v_retention interval := coalesce(chat_v11.policy_interval('retention'), interval '30 days');
    v_before bigint;
    v_after bigint;
begin
    select (pg_catalog.min(u.bucket_start) at time zone 'UTC')::date, pg_catalog.count(*)
      into v_first, v_before
      from chat_v11.metric_sample_unpartitioned as u;
    if v_first is not null then
        perform chat_v11.ensure_sample_partitions(
            least(v_today - 1,
                             greatest(v_first, ((pg_catalog.now() - v_retention) at time zone 'UTC')::date)),
            v_today + 7
        );
    end if;
    insert into chat_v11.metric_sample (metric, cohort, bucket_start, numerator, denominator, value, written_at)
    select u.metric, u.cohort, u.bucket_start, u.numerator, u.denominator, u.value, u.written_at
      from chat_v11.metric_sample_unpartitioned as u
     order by u.bucket_start, u.metric, u.cohort;
    get diagnostics v_after = row_count;
    if v_after <> v_before then
        raise exception using
            errcode = 'RO013',
            message = 'the metric samples did not all move into the partitioned store',
            detail = pg_catalog.format('%s rows before, %s moved.', v_before, v_after),
            hint = 'Nothing was changed (the migration rolled back); report this as a bug.';
    end if;
end
$$;
-- squawk-ignore ban-drop-table -- empty now: every row moved into the partitions above, counted
drop table chat_v11.metric_sample_unpartitioned;
-- PostgreSQL 18 names NOT NULL constraints; the partitioned table got <table>_<column>_not_null1 while the old
-- table still held the plain names: give it the names a fresh install gives (nothing to do before 18).
do $$
declare
    v_con record;
begin
    for v_con in
        select c.conname
          from pg_catalog.pg_constraint as c
         where c.conrelid = 'chat_v11.metric_sample'::regclass
           and c.contype = 'n'
           and c.conname ~ '_not_null1$'
    loop
        execute pg_catalog.format('alter table chat_v11.metric_sample rename constraint %I to %I',
                                  v_con.conname, pg_catalog.regexp_replace(v_con.conname, '1$', ''));
    end loop;
end
$$;
