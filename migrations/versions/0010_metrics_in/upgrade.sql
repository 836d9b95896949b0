-- >>> migrations/versions/0010_metrics_in/steps/a_metrics_in.sql
-- covers: sql/0150_table_config_change.sql
-- Revision 0010: the configuration audit also records metric sources (target metric_source). The check is replaced
-- in place under the migration's ACCESS EXCLUSIVE lock (migrations/env.py); the audit is small (one row per
-- configuration change), so the validating scan is short, and every existing row has one of the earlier targets.
-- squawk-ignore ban-drop-constraint -- replaced at once by a wider check of the same name
alter table chat_v11.config_change drop constraint config_change_target_valid;
-- squawk-ignore constraint-missing-not-valid -- a scan of the small audit table under the migration's lock
alter table chat_v11.config_change add constraint config_change_target_valid check (
    target in ('stage', 'policy', 'metric_rule', 'metric_source')
);
comment on table chat_v11.config_change is
'Who changed which stage setting, policy, metric rule or metric source, when, from what to what. Append-only.';

-- >>> sql/0125_table_metric_source.sql
-- Where the puller reads a metric (SPEC 7, "Prometheus in"): one PromQL expression per sample field, per metric and
-- cohort. Which fields a source has follows the metric's kind (a rate: numerator and denominator; a count:
-- numerator, optionally denominator; a latency: value), checked by public.chat_set_v11_metric_source, the only
-- writer (admin, audited in chat_v11.config_change). Each expression is evaluated at the END of the 10-second bucket
-- (`time=` bucket_start + 10 s), so it is written as the increase over the bucket: increase(x[10s]).
create table chat_v11.metric_source (
    metric text not null,
    cohort text not null,
    source jsonb not null,
    changed_at timestamptz not null default pg_catalog.clock_timestamp(),
    changed_by text not null default session_user,
    constraint metric_source_pkey primary key (metric, cohort),
    constraint metric_source_metric_fkey foreign key (metric) references chat_v11.metric (metric),
    constraint metric_source_cohort_valid check (cohort in ('canary', 'control')),
    constraint metric_source_fields_valid check (
        pg_catalog.jsonb_typeof(source) = 'object'
        and source <> '{}'::jsonb
        and source - '{numerator,denominator,value}'::text[] = '{}'::jsonb
        and not pg_catalog.jsonb_path_exists(source, 'strict $.* ? (@.type() != "string")')
    )
);

comment on table chat_v11.metric_source is
'PromQL per metric, cohort and sample field (numerator, denominator, value) that chat-rollout pull evaluates at '
'the end of each 10-second bucket. Written only by public.chat_set_v11_metric_source (admin, audited).';

-- >>> sql/0165_table_metric_pull.sql
-- What the puller read (SPEC 7, "Prometheus in"): per metric, cohort, bucket and sample field, the query as it was
-- sent (PromQL and the explicit time=), what came of it, the value read before any rounding, and the sha256 and a
-- bounded excerpt of the raw answer, so a postmortem sees what was read and not only what was queried
-- (flagger#1815). Written with the samples of the bucket in one transaction (public.chat_put_v11_metric_pulls);
-- a re-pulled bucket replaces its record. An empty or NaN answer is kept here too: it wrote no sample.
create table chat_v11.metric_pull (
    metric text not null,
    cohort text not null,
    bucket_start timestamptz not null,
    field text not null,
    query text not null,
    query_time timestamptz not null,
    outcome text not null,
    value double precision,
    answer_sha256 text not null,
    answer_excerpt text not null,
    pulled_at timestamptz not null default pg_catalog.clock_timestamp(),
    pulled_by text not null default session_user,
    constraint metric_pull_pkey primary key (metric, cohort, bucket_start, field),
    constraint metric_pull_metric_fkey foreign key (metric) references chat_v11.metric (metric),
    constraint metric_pull_cohort_valid check (cohort in ('canary', 'control')),
    constraint metric_pull_field_valid check (field in ('numerator', 'denominator', 'value')),
    constraint metric_pull_outcome_valid check (outcome in ('value', 'empty', 'nan', 'multiple_series')),
    constraint metric_pull_bucket_aligned_utc check (
        pg_catalog.date_bin('10 seconds'::interval, bucket_start, '2000-01-01 00:00:00+00'::timestamptz) = bucket_start
    ),
    constraint metric_pull_value_valid check ((outcome = 'value') = (value is not null)),
    constraint metric_pull_sha256_valid check (answer_sha256 ~ '^[0-9a-f]{64}$'),
    constraint metric_pull_bounded check (
        pg_catalog.length(query) <= 4500 and pg_catalog.length(answer_excerpt) <= 2000
    )
);

create index metric_pull_bucket_start on chat_v11.metric_pull (bucket_start);

comment on table chat_v11.metric_pull is
'Provenance of pulled buckets: the query sent (PromQL and time=), the outcome (value, empty, nan, multiple_series), '
'the value read, sha256 and excerpt (at most 2000 characters) of the raw Prometheus answer. Write with '
'public.chat_put_v11_metric_pulls(); read with public.chat_get_v11_metric_pulls().';

-- >>> sql/0636_function_chat_get_v11_metric_sources.sql
-- The metric sources (SPEC 7, "Prometheus in"): the PromQL the puller reads per metric and cohort, in gate order.
-- Readers see them; the ingest login of chat-rollout pull reads them to know what to query.
create or replace function public.chat_get_v11_metric_sources()
returns table (
    metric text,
    cohort text,
    kind text,
    numerator text,
    denominator text,
    value text,
    changed_at timestamptz,
    changed_by text
)
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    select s.metric, s.cohort, m.kind, s.source ->> 'numerator', s.source ->> 'denominator', s.source ->> 'value',
           s.changed_at, s.changed_by
      from chat_v11.metric_source as s
      join chat_v11.metric as m on m.metric = s.metric
     order by m.ordinal, s.cohort
$$;

revoke all on function public.chat_get_v11_metric_sources() from public;
grant execute on function public.chat_get_v11_metric_sources() to chat_rollout_reader, chat_rollout_ingest;
comment on function public.chat_get_v11_metric_sources() is
'Every metric source, in gate order: metric, cohort, kind, the PromQL of numerator, denominator and value (null '
'where the kind has none), when and by whom it was set. Read-only; readers and the ingest login of the puller.';

-- >>> sql/0638_function_chat_get_v11_metric_pulls.sql
-- What the puller read for the buckets of a time range (bucket_start between p_from and p_to, both included), for
-- readers: a postmortem's "what did the gate see, and where did it come from". At most 31 days per call.
create or replace function public.chat_get_v11_metric_pulls(p_from timestamptz, p_to timestamptz)
returns table (
    metric text,
    cohort text,
    bucket_start timestamptz,
    field text,
    query text,
    query_time timestamptz,
    outcome text,
    value double precision,
    answer_sha256 text,
    answer_excerpt text,
    pulled_at timestamptz,
    pulled_by text
)
language plpgsql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
declare
    v_bad boolean := false;
begin
    -- two steps: the subtraction only ever sees two finite times (an infinite difference is 22008 on 15 and 16)
    if p_from is null or p_to is null or not pg_catalog.isfinite(p_from) or not pg_catalog.isfinite(p_to)
       or p_to < p_from then
        v_bad := true;
    elsif p_to - p_from > interval '31 days' then
        v_bad := true;
    end if;
    if v_bad then
        raise exception using
            errcode = 'RO011',
            message = format(
                'the pull range must be two finite times running forward at most 31 days, not %s to %s',
                coalesce(p_from::text, 'null'), coalesce(p_to::text, 'null')
            ),
            detail = 'chat_get_v11_metric_pulls(p_from, p_to) returns the buckets whose start lies in [p_from, p_to].',
            hint = 'Ask for a shorter range, e.g. chat_get_v11_metric_pulls(now() - interval ''1 hour'', now()).';
    end if;
    return query
        select p.metric, p.cohort, p.bucket_start, p.field, p.query, p.query_time, p.outcome, p.value,
               p.answer_sha256, p.answer_excerpt, p.pulled_at, p.pulled_by
          from chat_v11.metric_pull as p
         where p.bucket_start between p_from and p_to
         order by p.metric, p.cohort, p.bucket_start, p.field;
end
$$;

revoke all on function public.chat_get_v11_metric_pulls(timestamptz, timestamptz) from public;
grant execute on function public.chat_get_v11_metric_pulls(timestamptz, timestamptz)
to chat_rollout_reader, chat_rollout_ingest;
comment on function public.chat_get_v11_metric_pulls(timestamptz, timestamptz) is
'What chat-rollout pull read for the buckets whose start lies in [p_from, p_to] (at most 31 days): per metric, '
'cohort, bucket and field the query sent (PromQL and time=), the outcome (value, empty, nan, multiple_series), the '
'value read, sha256 and excerpt of the raw answer, when and by whom. Read-only; RO011 for a bad range.';

-- >>> sql/0692_function_chat_set_v11_metric_source.sql
-- Sets where the puller reads one metric for one cohort (SPEC 7, "Prometheus in"): a JSON object of PromQL
-- expressions, one per sample field the metric's kind needs (a rate: numerator and denominator; a count: numerator,
-- optionally denominator; a latency: value); a null source removes it. Each expression is evaluated at the end of
-- the bucket (time = bucket_start + 10 s) and must answer one series: increase(x{cohort="canary"}[10s]).
-- Refusals: unknown metric (RO021), a wrong cohort, shape, key set or blank or oversized expression (RO016);
-- every change is audited in chat_v11.config_change (target metric_source, key "metric/cohort").
create or replace function public.chat_set_v11_metric_source(p_metric text, p_cohort text, p_source jsonb)
returns table (metric text, cohort text, source jsonb, changed_at timestamptz, changed_by text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_kind text;
    v_old jsonb;
    v_new jsonb;
    v_bad text;
    v_required text[];
    v_allowed text[];
    v_example constant text :=
        'For example: chat_set_v11_metric_source(''ack_without_receipt_10s_rate'', ''canary'', '
        || '''{"numerator": "sum(increase(chat_acks_without_receipt_total{cohort=\"canary\"}[10s]))", '
        || '"denominator": "sum(increase(chat_acks_total{cohort=\"canary\"}[10s]))"}'').';
begin
    perform chat_v11.begin_write('chat_set_v11_metric_source');
    select m.kind into v_kind from chat_v11.metric as m where m.metric = p_metric for share;
    if v_kind is null then
        raise exception using
            errcode = 'RO021',
            message = format('unknown metric %s', chat_v11.shown(p_metric)),
            detail = format('Known metrics: %s.',
                            (select string_agg(m.metric, ', ' order by m.ordinal) from chat_v11.metric as m)),
            hint = 'Name a metric of the catalog.';
    end if;
    if p_cohort is null or p_cohort not in ('canary', 'control') then
        raise exception using
            errcode = 'RO016',
            message = format('cohort %s must be "canary" or "control"', chat_v11.shown(p_cohort)),
            detail = 'A metric has one source per cohort: canary (v1.1 traffic) and control (the rest).',
            hint = 'Nothing was changed; name the cohort.';
    end if;
    v_required := case v_kind
        when 'rate' then array['numerator', 'denominator']
        when 'count' then array['numerator']
        else array['value']
    end;
    v_allowed := case v_kind when 'count' then array['numerator', 'denominator'] else v_required end;

    if p_source is not null then
        if jsonb_typeof(p_source) <> 'object' then
            raise exception using
                errcode = 'RO016',
                message = format('p_source must be a JSON object of PromQL expressions, not %s', jsonb_typeof(p_source)),
                detail = format('%s is a %s metric: keys %s.', p_metric, v_kind, array_to_string(v_allowed, ', ')),
                hint = v_example;
        end if;
        select string_agg(quote_literal(k), ', ' order by k) into v_bad
          from jsonb_object_keys(p_source) as k where k <> all (v_allowed);
        if v_bad is not null then
            raise exception using
                errcode = 'RO016',
                message = format('metric source keys %s do not apply to %s', v_bad, p_metric),
                detail = format('%s is a %s metric: keys %s (required: %s).', p_metric, v_kind,
                                array_to_string(v_allowed, ', '), array_to_string(v_required, ', ')),
                hint = 'Nothing was changed; send only the keys of this kind.';
        end if;
        select string_agg(k, ', ' order by k) into v_bad
          from unnest(v_required) as k where not p_source ? k;
        if v_bad is not null then
            raise exception using
                errcode = 'RO016',
                message = format('metric source of %s is missing %s', p_metric, v_bad),
                detail = format('%s is a %s metric: keys %s (required: %s). A null source removes it.', p_metric,
                                v_kind, array_to_string(v_allowed, ', '), array_to_string(v_required, ', ')),
                hint = v_example;
        end if;
        select string_agg(e.key, ', ' order by e.key) into v_bad
          from jsonb_each(p_source) as e
         where jsonb_typeof(e.value) <> 'string'
            or chat_v11.is_blank(e.value #>> '{}')
            or length(e.value #>> '{}') > 4000;
        if v_bad is not null then
            raise exception using
                errcode = 'RO016',
                message = format('metric source keys %s must be non-blank PromQL strings', v_bad),
                detail = 'Each field is one PromQL expression as a JSON string of at most 4000 characters, answering '
                    || 'one series at the end of the bucket (time = bucket_start + 10 s).',
                hint = v_example;
        end if;
    end if;

    select pg_catalog.to_jsonb(s.*) into v_old
      from chat_v11.metric_source as s where s.metric = p_metric and s.cohort = p_cohort for update;
    if p_source is null then
        delete from chat_v11.metric_source as s where s.metric = p_metric and s.cohort = p_cohort;
    else
        insert into chat_v11.metric_source as s (metric, cohort, source)
        values (p_metric, p_cohort, p_source)
        on conflict on constraint metric_source_pkey do update
            set source = excluded.source, changed_at = pg_catalog.clock_timestamp(), changed_by = session_user;
    end if;
    select pg_catalog.to_jsonb(s.*) into v_new
      from chat_v11.metric_source as s where s.metric = p_metric and s.cohort = p_cohort;
    if v_old is not null or v_new is not null then
        insert into chat_v11.config_change (actor, target, target_key, old_value, new_value)
        values (chat_v11.claimed_actor(), 'metric_source', p_metric || '/' || p_cohort, v_old,
                coalesce(v_new, 'null'::jsonb));
    end if;
    return query
        select p_metric, p_cohort, s.source, s.changed_at, s.changed_by
          from (select) as one
          left join chat_v11.metric_source as s on s.metric = p_metric and s.cohort = p_cohort;
end
$$;

revoke all on function public.chat_set_v11_metric_source(text, text, jsonb) from public;
grant execute on function public.chat_set_v11_metric_source(text, text, jsonb) to chat_rollout_admin;
comment on function public.chat_set_v11_metric_source(text, text, jsonb) is
'Admin: set the PromQL that chat-rollout pull reads for one metric and cohort, a JSON object with the fields of the '
'metric''s kind (rate: numerator, denominator; count: numerator, optional denominator; latency_ms: value), each '
'evaluated at the end of the 10-second bucket; a null source removes it. RO021 unknown metric, RO016 wrong cohort, '
'keys or expressions; every change is audited.';

-- >>> sql/0715_function_chat_run_v11_maintenance.sql
-- Partition maintenance of the metric store: daily partitions created ahead, days past the retention policy dropped
-- whole. Each DDL waits at most 50 ms for its locks (else that step is skipped and reported); the locks it got last
-- until the caller's commit, so run it alone in its own transaction (autocommit, as pg_cron does), never inside one.
create or replace function public.chat_run_v11_maintenance()
returns table (action text, detail text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_now timestamptz := pg_catalog.clock_timestamp();
    v_today date := (pg_catalog.clock_timestamp() at time zone 'UTC')::date;
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
    v_retention interval := coalesce(chat_v11.policy_interval('retention'), interval '30 days');
    v_xmax xid;
    v_holders text;
    v_day date;
    v_created text[] := '{}'::text[];
    v_busy text[] := '{}'::text[];
    v_dropped text[] := '{}'::text[];
    v_deleted bigint := 0::bigint;
    v_pulls_deleted bigint := 0::bigint;
begin
    perform chat_v11.begin_write('chat_run_v11_maintenance');
    -- one run at a time, under a row lock that only the project's functions can take (the table grants nothing):
    -- a busy lock is reported, never waited for
    perform from chat_v11.maintenance as m where m.job = 'metric_sample' for update skip locked;
    if not found then
        select m.xmax into v_xmax from chat_v11.maintenance as m where m.job = 'metric_sample';
        select pg_catalog.string_agg(pg_catalog.format('pid %s', l.pid), ', ' order by l.pid)
          into v_holders
          from pg_catalog.pg_locks as l
         where l.locktype = 'transactionid'
           and l.mode = 'ExclusiveLock'
           and l.granted
           and l.transactionid in (select h.x from chat_v11.xmax_holders(v_xmax) as h (x))
           and l.pid <> pg_catalog.pg_backend_pid();
        return query select 'skipped'::text,
                            pg_catalog.format('metric store maintenance skipped: another maintenance run holds the '
                                              || 'maintenance lock (%s); the next run retries',
                                              coalesce(v_holders, 'a transaction that has just ended'));
        return;
    end if;

    perform pg_catalog.set_config('lock_timeout', '50ms', true);
    -- AHEAD: at least 3 days ahead at all times; when a day in that span is missing, up to a week ahead at once (DDL
    -- every few days, not at every midnight). One day per subtransaction: a busy day is skipped, the others are made.
    if exists (
        select
          from pg_catalog.generate_series(-1, 3) as g (d)
         where pg_catalog.to_regclass('chat_v11.metric_sample_p' || pg_catalog.to_char(v_today + g.d, 'YYYYMMDD'))
               is null
    ) then
        for v_day in select v_today + g.d from pg_catalog.generate_series(-1, 7) as g (d) order by g.d loop
            if pg_catalog.to_regclass('chat_v11.metric_sample_p' || pg_catalog.to_char(v_day, 'YYYYMMDD')) is null then
                begin
                    perform chat_v11.ensure_sample_partitions(v_day, v_day);
                    v_created := v_created || pg_catalog.to_char(v_day, 'YYYY-MM-DD');
                exception when lock_not_available then
                    v_busy := v_busy || pg_catalog.format('creating the partition of %s',
                                                          pg_catalog.to_char(v_day, 'YYYY-MM-DD'));
                end;
            end if;
        end loop;
    end if;

    -- RETENTION: whole days dropped (ACCESS EXCLUSIVE on the parent for a moment), the straddling day trimmed
    begin
        select p.dropped, p.deleted into v_dropped, v_deleted from chat_v11.prune_samples(v_now - v_retention) as p;
    exception when lock_not_available then
        v_busy := v_busy || pg_catalog.format('removing the samples older than %s', v_retention);
    end;
    -- the pull provenance (0010) follows the samples it explains: records past the same retention go, one index range
    begin
        delete from chat_v11.metric_pull as mp where mp.bucket_start < v_now - v_retention;
        get diagnostics v_pulls_deleted = row_count;
    exception when lock_not_available then
        v_busy := v_busy || pg_catalog.format('removing the pull records older than %s', v_retention);
    end;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);

    if pg_catalog.cardinality(v_created) > 0 then
        return query select 'partition'::text,
                            pg_catalog.format('%s daily partitions of the metric store created ahead (%s .. %s)',
                                              pg_catalog.cardinality(v_created), v_created[1],
                                              v_created[pg_catalog.cardinality(v_created)]);
    end if;
    if v_deleted > 0 or pg_catalog.cardinality(v_dropped) > 0 then
        return query select 'prune'::text,
                            pg_catalog.format('samples older than %s removed: %s daily partitions dropped whole%s, '
                                              || '%s rows deleted one by one', v_retention,
                                              pg_catalog.cardinality(v_dropped),
                                              case when pg_catalog.cardinality(v_dropped) > 0
                                                   then pg_catalog.format(' (%s .. %s)', v_dropped[1],
                                                        v_dropped[pg_catalog.cardinality(v_dropped)])
                                                   else '' end,
                                              v_deleted);
    end if;
    if v_pulls_deleted > 0 then
        return query select 'prune'::text,
                            pg_catalog.format('pull records older than %s removed: %s rows', v_retention,
                                              v_pulls_deleted);
    end if;
    if pg_catalog.cardinality(v_busy) > 0 then
        return query select 'skipped'::text,
                            pg_catalog.format('metric store maintenance step skipped, a lock was busy for 50 ms: %s; '
                                              || 'the next run retries', pg_catalog.array_to_string(v_busy, ', '));
    end if;
end
$$;

revoke all on function public.chat_run_v11_maintenance() from public;
grant execute on function public.chat_run_v11_maintenance() to chat_rollout_ingest;
comment on function public.chat_run_v11_maintenance() is
'Ingest: partition maintenance of the metric store, to schedule on its own (e.g. hourly with pg_cron, in '
'autocommit): daily partitions kept 3 to 7 days ahead, days past the retention policy dropped whole. One run at a '
'time (a busy run says skipped); each DDL waits at most 50 ms for a lock, else skipped and retried next run. Pull '
'records (chat-rollout pull) past the same retention are deleted. Its '
'locks last until the caller commits: never call it inside a longer transaction. One row per action: partition, '
'prune, skipped.';

-- >>> sql/0720_function_chat_put_v11_metric_pulls.sql
-- Keeps what the puller read (SPEC 7, "Prometheus in"), a JSON array of records
-- {metric, cohort, bucket_start, field, query, query_time, outcome, value, answer_sha256, answer_excerpt}, all or
-- nothing; a re-pulled (metric, cohort, bucket_start, field) replaces its record. chat-rollout pull calls it in the
-- transaction that writes the bucket's samples, so a stored sample always has its provenance and a sample that was
-- not written (an empty or NaN answer) has its reason.
create or replace function public.chat_put_v11_metric_pulls(p_pulls jsonb)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
declare
    v_bad record;
    v_count integer;
begin
    perform chat_v11.begin_write('chat_put_v11_metric_pulls');
    if p_pulls is null or pg_catalog.jsonb_typeof(p_pulls) is distinct from 'array' then
        raise exception using
            errcode = 'RO020',
            message = 'p_pulls must be a JSON array of pull records',
            detail = format('Got %s.', coalesce(pg_catalog.jsonb_typeof(p_pulls), 'null')),
            hint = 'Pass [{"metric": ..., "cohort": "canary", "bucket_start": "2026-11-26T10:00:10Z", "field": '
                || '"numerator", "query": ..., "query_time": ..., "outcome": "value", "value": 0, '
                || '"answer_sha256": ..., "answer_excerpt": ...}, ...].';
    end if;
    -- the first record that cannot be stored, by position, with its problem (the table's constraints, named)
    select e.ord, v.problem, v.code into v_bad
      from pg_catalog.jsonb_array_elements(p_pulls) with ordinality as e (pull, ord)
     cross join lateral (
         select case
             when pg_catalog.jsonb_typeof(e.pull) is distinct from 'object' then 'RO022:the record is not a JSON object'
             when e.pull - '{metric,cohort,bucket_start,field,query,query_time,outcome,value,answer_sha256,'
                           'answer_excerpt}'::text[] <> '{}'::jsonb
                 then 'RO022:unknown key in ' || chat_v11.shown(e.pull::text)
             when pg_catalog.jsonb_path_exists(e.pull, 'strict $.* ? (@.type() != "string" && @.type() != "number" '
                                                       '&& @.type() != "null")')
                 then 'RO022:every field is a JSON string, number or null'
             when not exists (select from chat_v11.metric as m where m.metric = e.pull ->> 'metric')
                 then 'RO021:unknown metric ' || chat_v11.shown(e.pull ->> 'metric')
             when (e.pull ->> 'cohort') is null or (e.pull ->> 'cohort') not in ('canary', 'control')
                 then 'RO022:cohort must be "canary" or "control"'
             when (e.pull ->> 'field') is null or (e.pull ->> 'field') not in ('numerator', 'denominator', 'value')
                 then 'RO022:field must be numerator, denominator or value'
             when (e.pull ->> 'outcome') is null
                  or (e.pull ->> 'outcome') not in ('value', 'empty', 'nan', 'multiple_series')
                 then 'RO022:outcome must be value, empty, nan or multiple_series'
             when ((e.pull ->> 'outcome') = 'value') <> (pg_catalog.jsonb_typeof(e.pull -> 'value') = 'number')
                 then 'RO022:value is a JSON number exactly when the outcome is value'
             when coalesce(e.pull ->> 'answer_sha256', '') !~ '^[0-9a-f]{64}$'
                 then 'RO022:answer_sha256 must be 64 lowercase hex digits'
             when chat_v11.is_blank(e.pull ->> 'query') or pg_catalog.length(e.pull ->> 'query') > 4500
                 then 'RO022:query must be the query sent, at most 4500 characters'
             when (e.pull ->> 'answer_excerpt') is null or pg_catalog.length(e.pull ->> 'answer_excerpt') > 2000
                 then 'RO022:answer_excerpt must be a string of at most 2000 characters'
             when coalesce(e.pull ->> 'bucket_start', '')
                  !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|z|[+-]\d{2}(:?\d{2})?)$'
                  or coalesce(e.pull ->> 'query_time', '')
                  !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|z|[+-]\d{2}(:?\d{2})?)$'
                 then 'RO022:bucket_start and query_time must be ISO 8601 timestamps with an offset'
         end as verdict
     ) as c
     cross join lateral (select pg_catalog.split_part(c.verdict, ':', 1) as code,
                                pg_catalog.substr(c.verdict, 7) as problem) as v
     where c.verdict is not null
     order by e.ord
     limit 1;
    if v_bad.ord is not null then
        raise exception using
            errcode = v_bad.code,
            message = format('pull record %s of %s: %s', v_bad.ord, pg_catalog.jsonb_array_length(p_pulls),
                             v_bad.problem),
            detail = 'Nothing was written.',
            hint = 'Fix the record and send the whole batch again.';
    end if;
    begin
        insert into chat_v11.metric_pull as p (
            metric, cohort, bucket_start, field, query, query_time, outcome, value, answer_sha256, answer_excerpt
        )
        select x.metric, x.cohort, x.bucket_start, x.field, x.query, x.query_time, x.outcome, x.value,
               x.answer_sha256, x.answer_excerpt
          from pg_catalog.jsonb_to_recordset(p_pulls) as x (
              metric text, cohort text, bucket_start timestamptz, field text, query text, query_time timestamptz,
              outcome text, value double precision, answer_sha256 text, answer_excerpt text
          )
        on conflict on constraint metric_pull_pkey do update
            set query = excluded.query, query_time = excluded.query_time, outcome = excluded.outcome,
                value = excluded.value, answer_sha256 = excluded.answer_sha256,
                answer_excerpt = excluded.answer_excerpt, pulled_at = pg_catalog.clock_timestamp(),
                pulled_by = session_user;
        get diagnostics v_count = row_count;
    exception
        when cardinality_violation then
            raise exception using
                errcode = 'RO025',
                message = 'the same (metric, cohort, bucket_start, field) twice in one batch of pull records',
                detail = 'Nothing was written.',
                hint = 'Send each record once.';
        when data_exception or check_violation then
            raise exception using
                errcode = case when sqlerrm ~ 'aligned' then 'RO023' else 'RO022' end,
                message = format('a pull record could not be stored: %s', chat_v11.shown(sqlerrm)),
                detail = 'bucket_start is aligned to 10 seconds in UTC; value is a finite number. Nothing was written.',
                hint = 'Fix the record and send the whole batch again.';
    end;
    return v_count;
end
$$;

revoke all on function public.chat_put_v11_metric_pulls(jsonb) from public;
grant execute on function public.chat_put_v11_metric_pulls(jsonb) to chat_rollout_ingest;
comment on function public.chat_put_v11_metric_pulls(jsonb) is
'Metric pullers: keep what was read per metric, cohort, bucket and field [{metric, cohort, bucket_start, field, '
'query, query_time, outcome, value, answer_sha256, answer_excerpt}], all or nothing; a re-pulled record replaces '
'the old one. Returns the number of records written.';
