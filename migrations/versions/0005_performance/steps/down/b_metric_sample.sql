-- PART 1 (before the restored sql/0160 creates the unpartitioned table): the partitioned store steps aside.
-- squawk-ignore renaming-table -- internal table, no client may read it (every read and write goes through functions)
alter table chat_v11.metric_sample rename to metric_sample_partitioned;
-- squawk-ignore renaming-object -- its index, freed for the unpartitioned table's primary key
alter index chat_v11.metric_sample_pkey rename to metric_sample_partitioned_pkey;
-- PART 2 (after the restores): every sample moves back, counted, then the partitions and their helpers go.
do $$
declare
    v_before bigint;
    v_after bigint;
begin
    select pg_catalog.count(*) into v_before from chat_v11.metric_sample_partitioned;
    insert into chat_v11.metric_sample (metric, cohort, bucket_start, numerator, denominator, value, written_at)
    select p.metric, p.cohort, p.bucket_start, p.numerator, p.denominator, p.value, p.written_at
      from chat_v11.metric_sample_partitioned as p;
    get diagnostics v_after = row_count;
    if v_after <> v_before then
        raise exception using
            errcode = 'RO013',
            message = 'the metric samples did not all move back into the unpartitioned store',
            detail = pg_catalog.format('%s rows before, %s moved.', v_before, v_after),
            hint = 'Nothing was changed (the downgrade rolled back); report this as a bug.';
    end if;
end
$$;
drop table chat_v11.metric_sample_partitioned;
-- PostgreSQL 18 names NOT NULL constraints: the restored table got <table>_<column>_not_null1 beside the
-- partitioned one; give it back the names revision 0004 had (nothing to do before 18).
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
drop function chat_v11.prune_samples(timestamptz);
drop function chat_v11.ensure_sample_partitions(date, date);
