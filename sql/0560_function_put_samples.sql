-- Validates and stores a batch of typed samples (parallel arrays, position = sample number), all or
-- nothing; then judges any P0 event of the batch at once (chat_v11.auto_kill) and stores the most recent gate
-- evaluation for a kill to record (chat_v11.remember_gates). Returns the count written. The per-minute totals of
-- the gates follow the write through the table's statement triggers (sql/0266).
--
-- Built for throughput (docs/design.md, "Ingestion: how it reaches N samples/s"): the fast checks below only
-- decide whether the batch is clean, with array operators and one pass over the rows, and the table's own
-- constraints (NOT NULL, cohort, 10-second alignment in UTC, counts) back them up; whenever something is wrong, the
-- exact validation (chat_v11.refuse_samples) finds the first bad sample by position and raises its refusal (a
-- constraint violation always reaches the caller as a project SQLSTATE, RO022-RO025, never as 23514).
-- New buckets are written by a plain INSERT; only when a key is stored already (or repeated) is the batch upserted.
-- A bucket sent twice in the batch is not looked for up front: the upsert raises 21000 on it, and only then is
-- it named (RO025). Rows are written in one global key order, so concurrent batches never deadlock.
create or replace function chat_v11.put_samples(
    p_metric text[],
    p_cohort text[],
    p_bucket_start timestamptz[],
    p_numerator bigint[],
    p_denominator bigint[],
    p_value double precision[]
)
returns integer
language plpgsql
volatile
as $$
declare
    v_now timestamptz := pg_catalog.clock_timestamp();
    v_total integer := coalesce(pg_catalog.cardinality(p_metric), 0);
    v_names text[];  -- the catalog's metric names in byte order: the write order, and the index of the next two
    v_kinds text[];
    v_p0 text[];
    v_bad boolean;
    v_written integer;
    v_evidence timestamptz;
    v_constraint text;
    v_killed bigint;
begin
    perform chat_v11.begin_write('chat_put_v11_metric_samples');
    if v_total = 0 then
        return 0;
    end if;
    select coalesce(array_agg(m.metric order by m.metric collate "C"), '{}'),
           coalesce(array_agg(m.kind order by m.metric collate "C"), '{}'),
           coalesce(array_agg(m.metric) filter (where m.severity = 'P0'), '{}')
      into v_names, v_kinds, v_p0
      from chat_v11.metric as m;

    -- FAST CHECKS, whole arrays at once (operators over arrays, no row built): metric, cohort, bucket_start
    -- present and finite and at most 5 minutes ahead, no negative count, value within [0, 1e12] (NaN and
    -- +-Infinity fail these comparisons too)
    if not p_metric <@ v_names
       or not p_cohort <@ '{canary,control}'::text[]
       or pg_catalog.array_position(p_bucket_start, null) is not null
       or '-infinity'::timestamptz = any(p_bucket_start)
       or v_now + interval '5 minutes' < any(p_bucket_start)
       or (0 > any(p_numerator)) is true
       or (0 > any(p_denominator)) is true
       or (0 > any(p_value)) is true
       or (1e12 < any(p_value)) is true then
        perform chat_v11.refuse_samples(p_metric, p_cohort, p_bucket_start, p_numerator, p_denominator, p_value,
                                        v_now);
    end if;
    -- ... then one pass over the rows for what depends on the metric's kind, and the guard's evidence: the
    -- newest bucket of the batch with a P0 event
    select pg_catalog.bool_or(
               case v_kinds[pg_catalog.array_position(v_names, x.metric)]
                   when 'rate' then x.numerator is null or x.denominator is null or x.numerator > x.denominator
                   when 'count' then x.numerator is null
                   when 'latency_ms' then x.value is null
                   else false
               end
           ),
           pg_catalog.max(x.bucket_start) filter (where x.numerator > 0 and x.metric = any(v_p0))
      into v_bad, v_evidence
      from (
          select unnest(p_metric) as metric, unnest(p_bucket_start) as bucket_start,
                 unnest(p_numerator) as numerator, unnest(p_denominator) as denominator, unnest(p_value) as value
      ) as x;
    if v_bad then
        perform chat_v11.refuse_samples(p_metric, p_cohort, p_bucket_start, p_numerator, p_denominator, p_value,
                                        v_now);
    end if;

    -- WRITE: idempotent, a re-sent bucket replaces the stored one. Key order (metric by its byte order, canary
    -- before control, bucket_start) is one total order for every writer, in both statements below: concurrent
    -- batches never deadlock; it sorts on an integer, a boolean and a timestamp, never comparing text.
    begin
        begin
            -- new buckets, the usual case: a plain INSERT, cheaper than an upsert (no speculative insertion)
            insert into chat_v11.metric_sample (metric, cohort, bucket_start, numerator, denominator, value, written_at)
            select x.metric, x.cohort, x.bucket_start, x.numerator, x.denominator, x.value, v_now
              from (
                  select unnest(p_metric) as metric, unnest(p_cohort) as cohort,
                         unnest(p_bucket_start) as bucket_start, unnest(p_numerator) as numerator,
                         unnest(p_denominator) as denominator, unnest(p_value) as value
              ) as x
             order by pg_catalog.array_position(v_names, x.metric), x.cohort = 'control', x.bucket_start;
            get diagnostics v_written = row_count;
        exception when unique_violation then
            -- a bucket stored already (re-sent, or by a concurrent writer that committed first) or twice in this
            -- batch: the attempt is rolled back (its rows and its locks) and the batch is upserted
            insert into chat_v11.metric_sample as s (
                metric, cohort, bucket_start, numerator, denominator, value, written_at
            )
            select x.metric, x.cohort, x.bucket_start, x.numerator, x.denominator, x.value, v_now
              from (
                  select unnest(p_metric) as metric, unnest(p_cohort) as cohort,
                         unnest(p_bucket_start) as bucket_start, unnest(p_numerator) as numerator,
                         unnest(p_denominator) as denominator, unnest(p_value) as value
              ) as x
             order by pg_catalog.array_position(v_names, x.metric), x.cohort = 'control', x.bucket_start
                on conflict (metric, cohort, bucket_start) do update
               set numerator = excluded.numerator,
                   denominator = excluded.denominator,
                   value = excluded.value,
                   written_at = excluded.written_at;
            get diagnostics v_written = row_count;
        end;
    exception when cardinality_violation or check_violation or not_null_violation then
        -- a bucket twice in the batch (21000 from the upsert), or a sample the fast checks let through and a
        -- constraint refused (numerator > denominator of a count, a bucket not aligned in UTC): name it exactly,
        -- by position and field (chat_v11.sample_problem covers every CHECK of the table)
        perform chat_v11.refuse_samples(p_metric, p_cohort, p_bucket_start, p_numerator, p_denominator, p_value,
                                        v_now);
        -- not reached while sample_problem covers the table's constraints: still a project SQLSTATE, never 23514
        get stacked diagnostics v_constraint = constraint_name;
        raise exception using
            errcode = case when sqlstate = '21000' then 'RO025' else 'RO022' end,
            message = format('a sample of %s was refused by the constraint %s', v_total,
                             coalesce(nullif(v_constraint, ''), sqlstate)),
            detail = format('%s Nothing was written.', chat_v11.shown(sqlerrm)),
            hint = 'Fix the sample and send the whole batch again; samples are '
                || '{metric, cohort, bucket_start, numerator, denominator, value}.';
    end;

    -- GUARD: a P0 event in this batch is judged now, at the newest bucket that carries one
    if v_evidence is not null then
        v_killed := chat_v11.auto_kill(v_evidence, 'ingestion');
    end if;
    -- the most recent evaluation, for a kill to record without evaluating (not after an automatic kill: its history
    -- row carries one); at most one every 5 seconds, never a wait (chat_v11.remember_gates)
    if v_killed is null then
        perform chat_v11.remember_gates('ingestion', pg_catalog.clock_timestamp());
    end if;
    return v_written;
end
$$;

revoke all on function chat_v11.put_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[]
) from public;
comment on function chat_v11.put_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[]
) is
'Validates and stores typed samples all or nothing (a bad sample raises RO021-RO025 naming its position), '
'then judges P0 events of the batch at once (auto_kill). Returns the number of samples written.';
