-- >>> migrations/steps/0007_a_verify.sql
-- Revision 0007: chat_verify_v11_history returns one row per finding (kind, head) and takes an anchor; a function's
-- result type cannot change in place, so the old form goes first (sql/0660 creates the new one with its grants).
-- squawk-ignore ban-drop-function -- re-created by sql/0660 in this same transaction, with its grants
drop function public.chat_verify_v11_history();

-- >>> migrations/steps/0007_b_metric_sample_alignment.sql
-- covers: sql/0160_table_metric_sample.sql
-- Revision 0007: buckets are aligned to 10 seconds in UTC, whatever the session's TimeZone. The old constraint
-- (date_trunc and extract(second), both read in the session's TimeZone) accepted or refused a bucket by its offset.
-- Added NOT VALID (no scan under the lock), validated (a scan under SHARE UPDATE EXCLUSIVE), then the old one goes;
-- lock_timeout is the migration's (migrations/env.py). A stored bucket fails only if it was written in a TimeZone
-- whose offset then was not a whole number of 10 seconds (local mean time, before about 1970): retention pruned such
-- buckets long ago; should one be left, VALIDATE fails and the upgrade changes nothing.
alter table chat_v11.metric_sample add constraint metric_sample_bucket_aligned_utc check (
    pg_catalog.date_bin('10 seconds'::interval, bucket_start, '2000-01-01 00:00:00+00'::timestamptz) = bucket_start
) not valid;

-- One transaction (migrations/env.py) by design: one scan of the samples (bounded by retention) while gate reads of
-- samples wait; a state call's own path does not read this table.
-- squawk-ignore constraint-missing-not-valid -- see above
alter table chat_v11.metric_sample validate constraint metric_sample_bucket_aligned_utc;

-- squawk-ignore ban-drop-constraint -- replaced above by metric_sample_bucket_aligned_utc: the same guarantee, in UTC
alter table chat_v11.metric_sample drop constraint metric_sample_bucket_aligned;

-- >>> sql/0195_table_history_checkpoint.sql
-- Checkpoints of the verified rollout history: where an incremental chat_verify_v11_history() starts, and the state
-- row's xmin each one saw (an acknowledged state row rewritten outside a transition: a migration or a restore).
create table chat_v11.history_checkpoint (
    checkpoint_id bigint generated always as identity,
    version bigint not null,
    hash text not null,
    state_xmin xid,
    walked_from bigint,
    verified_at timestamptz not null default pg_catalog.clock_timestamp(),
    verified_by text not null default session_user,
    constraint history_checkpoint_pkey primary key (checkpoint_id),
    constraint history_checkpoint_version_positive check (version >= 1),
    constraint history_checkpoint_hash_format check (hash ~ '^[0-9a-f]{64}$'),
    constraint history_checkpoint_walk check (walked_from is null or walked_from between 1 and version)
);

comment on table chat_v11.history_checkpoint is
'History versions a verify run found intact (walked_from: the first version it walked; null: an acknowledgement of the '
'state row''s xmin, written by a migration). Append-only; written by public.chat_checkpoint_v11_history().';

-- >>> sql/0250_trigger_history_checkpoint_append_only.sql
-- History checkpoints are append-only, like the history they vouch for.
create trigger history_checkpoint_no_update_delete
before update or delete on chat_v11.history_checkpoint
for each row execute function chat_v11.refuse_history_change();

create trigger history_checkpoint_no_truncate
before truncate on chat_v11.history_checkpoint
for each statement execute function chat_v11.refuse_history_change();

-- >>> sql/0307_function_is_blank.sql
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

-- >>> sql/0310_function_checked_reason.sql
-- Validates a reason (required, trimmed, 1-500 characters, any Unicode, at least one visible character: not only
-- white space, control or invisible format characters, chat_v11.is_blank) and returns it trimmed.
create or replace function chat_v11.checked_reason(p_reason text)
returns text
language plpgsql
stable
as $$
declare
    v_reason text := pg_catalog.regexp_replace(
        p_reason,
        '^[[:space:]\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]+'
        || '|[[:space:]\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]+$',
        '', 'g'
    );
begin
    if v_reason is null or chat_v11.is_blank(v_reason) or pg_catalog.char_length(v_reason) > 500 then
        raise exception using
            errcode = 'RO001',
            message = 'a reason is required: 1 to 500 characters after trimming',
            detail = case
                when p_reason is null then 'The reason is null.'
                when v_reason = '' then 'The reason is empty or only white space.'
                when chat_v11.is_blank(v_reason) then format(
                    'The reason has %s characters, none visible: only white space, control or invisible format '
                    || 'characters (such as U+200B, U+200D, U+00AD, U+2060).', pg_catalog.char_length(v_reason))
                else format('The reason has %s characters.', pg_catalog.char_length(v_reason))
            end,
            hint = 'Say why in a few words, for example ''incident P0'' or ''hold''; the reason is kept in the history.';
    end if;
    return v_reason;
end
$$;

revoke all on function chat_v11.checked_reason(text) from public;
comment on function chat_v11.checked_reason(text) is
'Returns the trimmed reason or raises RO001 when it is missing, blank (only white space, control or invisible format '
'characters) or longer than 500 characters.';

-- >>> sql/0370_function_sample_shape_problem.sql
-- What is wrong with the JSON shape of one ingestion sample, or no row when its fields can be read:
-- an object with known keys, a string metric and cohort, an ISO 8601 bucket_start with an offset,
-- whole non-negative counts and a finite value, all as JSON numbers (SPEC 4.4). Each problem names its field;
-- caller text (an unknown key) is quoted by chat_v11.shown, at most 100 characters.
create or replace function chat_v11.sample_shape_problem(p_sample jsonb)
returns table (code text, problem text)
language sql
immutable
as $$
    with f as (
        select
            pg_catalog.jsonb_typeof(p_sample) as t,
            pg_catalog.jsonb_typeof(p_sample -> 'metric') as t_metric,
            pg_catalog.jsonb_typeof(p_sample -> 'cohort') as t_cohort,
            pg_catalog.jsonb_typeof(p_sample -> 'bucket_start') as t_bucket,
            pg_catalog.jsonb_typeof(p_sample -> 'numerator') as t_num,
            pg_catalog.jsonb_typeof(p_sample -> 'denominator') as t_den,
            pg_catalog.jsonb_typeof(p_sample -> 'value') as t_value
    ),
    unknown as (
        select pg_catalog.min(k.key collate "C") as first_key, pg_catalog.count(*) as n
          from pg_catalog.jsonb_object_keys(
                   case when pg_catalog.jsonb_typeof(p_sample) = 'object' then p_sample else '{}' end
               ) as k (key)
         where k.key not in ('metric', 'cohort', 'bucket_start', 'numerator', 'denominator', 'value')
    ),
    checks as (
        select case
            when f.t is distinct from 'object' then 'the sample is not a JSON object'
            when u.n > 0 then 'unknown key ' || chat_v11.shown(u.first_key)
                || case when u.n > 1 then pg_catalog.format(' (and %s more unknown keys)', u.n - 1) else '' end
            when f.t_metric is distinct from 'string' then 'metric must be a JSON string'
            when f.t_cohort is distinct from 'string' then 'cohort must be a JSON string: "canary" or "control"'
            when f.t_bucket is distinct from 'string'
                 or (p_sample ->> 'bucket_start')
                 !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|z|[+-]\d{2}(:?\d{2})?)$'
                then 'bucket_start must be an ISO 8601 timestamp with an offset, e.g. 2026-11-26T10:00:10Z'
            when f.t_num not in ('number', 'null')
                then 'numerator must be a JSON number or null (NaN and Infinity are not numbers)'
            when f.t_den not in ('number', 'null')
                then 'denominator must be a JSON number or null (NaN and Infinity are not numbers)'
            when f.t_value not in ('number', 'null')
                then 'value must be a JSON number or null (NaN and Infinity are not numbers)'
            when (p_sample ->> 'numerator')::numeric < 0 then 'numerator is negative: a count is 0 or more'
            when (p_sample ->> 'denominator')::numeric < 0 then 'denominator is negative: a count is 0 or more'
            when (p_sample ->> 'numerator')::numeric <> pg_catalog.trunc((p_sample ->> 'numerator')::numeric)
                then 'numerator is a count: a whole number'
            when (p_sample ->> 'denominator')::numeric <> pg_catalog.trunc((p_sample ->> 'denominator')::numeric)
                then 'denominator is a count: a whole number'
            when (p_sample ->> 'numerator')::numeric > 9223372036854775807
                then 'numerator is out of range (at most 9223372036854775807)'
            when (p_sample ->> 'denominator')::numeric > 9223372036854775807
                then 'denominator is out of range (at most 9223372036854775807)'
            when abs((p_sample ->> 'value')::numeric) > 1e12
                then 'value must be between 0 and 1e12'
        end as problem
          from f cross join unknown as u
    )
    select 'RO022', c.problem from checks as c where c.problem is not null
$$;

revoke all on function chat_v11.sample_shape_problem(jsonb) from public;
comment on function chat_v11.sample_shape_problem(jsonb) is
'The JSON-shape problem of one ingestion sample, naming its field (not an object, unknown key quoted at most 100 '
'characters, wrong JSON type, NaN, negative, fractional or out-of-range count), or no row when its fields can be '
'read as typed values.';

-- >>> sql/0375_function_sample_problem.sql
-- What is wrong with one typed metric sample, naming its field, or no row when it may be stored (SPEC 4.4): unknown
-- metric (RO021), wrong cohort, negative or missing counts, numerator > denominator (any kind), NaN or Infinity
-- (RO022), bucket not aligned to 10 s in UTC (RO023), more than 5 minutes in the future (RO024). Every CHECK of
-- chat_v11.metric_sample is covered, so a constraint violation is always named here.
create or replace function chat_v11.sample_problem(
    p_kind text,
    p_metric text,
    p_cohort text,
    p_bucket_start timestamptz,
    p_numerator bigint,
    p_denominator bigint,
    p_value double precision,
    p_now timestamptz
)
returns table (code text, problem text)
language sql
stable
as $$
    select pg_catalog.split_part(v.verdict, ':', 1), pg_catalog.substr(v.verdict, 7)
      from (
          select case
              when p_kind is null then 'RO021:unknown metric ' || chat_v11.shown(p_metric)
              when p_cohort is null or p_cohort not in ('canary', 'control')
                  then 'RO022:cohort ' || chat_v11.shown(p_cohort) || ' must be "canary" or "control"'
              when p_bucket_start is null then 'RO022:bucket_start is missing'
              when p_bucket_start in ('infinity', '-infinity') then 'RO022:bucket_start must be a finite timestamp'
              when p_numerator < 0 then 'RO022:numerator is negative: a count is 0 or more'
              when p_denominator < 0 then 'RO022:denominator is negative: a count is 0 or more'
              when p_kind = 'rate' and p_numerator is null then 'RO022:numerator is missing: a rate needs numerator '
                  || 'and denominator'
              when p_kind = 'rate' and p_denominator is null then 'RO022:denominator is missing: a rate needs '
                  || 'numerator and denominator'
              when p_numerator > p_denominator
                  then pg_catalog.format('RO022:numerator %s is greater than denominator %s', p_numerator,
                                         p_denominator)
              when p_kind = 'count' and p_numerator is null then 'RO022:numerator is missing: a count needs numerator'
              when p_kind = 'latency_ms' and p_value is null
                  then 'RO022:value is missing: a latency needs value (milliseconds)'
              when p_value in ('NaN', 'Infinity', '-Infinity') then 'RO022:value must be a finite number'
              when p_value < 0 or p_value > 1e12 then 'RO022:value must be between 0 and 1e12'
              -- in UTC whatever the session's TimeZone, as the constraint metric_sample_bucket_aligned_utc
              when pg_catalog.date_bin(interval '10 seconds', p_bucket_start, timestamptz '2000-01-01 00:00:00+00')
                   <> p_bucket_start
                  then 'RO023:bucket_start is not aligned to 10 seconds (UTC)'
              when p_bucket_start > p_now + interval '5 minutes'
                  then 'RO024:bucket_start is more than 5 minutes in the future'
          end as verdict
      ) as v
     where v.verdict is not null
$$;

revoke all on function chat_v11.sample_problem(
    text,
    text,
    text,
    timestamptz,
    bigint,
    bigint,
    double precision,
    timestamptz
) from public;
comment on function chat_v11.sample_problem(
    text,
    text,
    text,
    timestamptz,
    bigint,
    bigint,
    double precision,
    timestamptz
) is
'The SQLSTATE and problem (naming the field) of one typed ingestion sample, or no row when it may be stored; covers '
'every CHECK constraint of chat_v11.metric_sample (alignment in UTC, whatever the session TimeZone).';

-- >>> sql/0381_function_sample_field_problem.sql
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

-- >>> sql/0385_function_reject_sample.sql
-- Raises the refusal of a whole ingestion batch for its first bad sample (named by position); the sample is quoted
-- by chat_v11.shown (at most 100 characters), the problem names the field and quotes caller text the same way.
create or replace function chat_v11.reject_sample(
    p_ord bigint, p_total bigint, p_code text, p_problem text, p_sample text
)
returns void
language plpgsql
stable
as $$
begin
    raise exception using
        errcode = p_code,
        message = format('sample %s of %s rejected: %s', p_ord, p_total, p_problem),
        detail = format('Sample %s: %s. Nothing was written.', p_ord, chat_v11.shown(p_sample)),
        hint = case p_code
            when 'RO021' then 'Use a metric of the catalog: ' || (
                select pg_catalog.string_agg(m.metric, ', ' order by m.ordinal) from chat_v11.metric as m)
            when 'RO023' then 'Round bucket_start down to a multiple of 10 seconds (UTC).'
            when 'RO024' then 'Check the writer''s clock: buckets may be at most 5 minutes ahead of the server.'
            when 'RO025' then 'Send each (metric, cohort, bucket_start) once per batch.'
            else 'Fix the sample and send the whole batch again; samples are '
                || '{metric, cohort, bucket_start, numerator, denominator, value}.'
        end;
end
$$;

revoke all on function chat_v11.reject_sample(bigint, bigint, text, text, text) from public;
comment on function chat_v11.reject_sample(bigint, bigint, text, text, text) is
'Raises the refusal of an ingestion batch naming its first bad sample by position (SQLSTATE RO021-RO025), the '
'sample quoted at most 100 characters.';

-- >>> sql/0397_function_postmortem_problems.sql
-- What a postmortem lacks or gets wrong (playbook section 10), or an empty array when it is complete: at most
-- 256 KiB of JSON, lists of 1 to 200 non-blank entries, root causes and owners as visible text, real deadlines.
create or replace function chat_v11.postmortem_problems(p_postmortem jsonb)
returns text[]
language plpgsql
stable
as $$
declare
    c_max_bytes constant integer := 262144;  -- 256 KiB of JSON text
    c_max_entries constant integer := 200;  -- entries of a list, action items included
    c_shown_items constant integer := 10;  -- action items whose problems are spelled out
    v_problems text[] := '{}'::text[];
    v_unknown text[];
    v_bytes integer;
    v_key text;
    v_field text;
    v_value jsonb;
    v_problem text;
    v_item jsonb;
    v_ord bigint;
    v_bad_items integer := 0;
    v_date text;
    v_year integer;
    v_month integer;
    v_day integer;
    v_days integer;  -- days in v_month of v_year
begin
    if p_postmortem is null or pg_catalog.jsonb_typeof(p_postmortem) <> 'object' then
        return array['the postmortem must be a JSON object'];
    end if;
    -- SIZE first: nothing else is read in a document over the cap
    v_bytes := pg_catalog.octet_length(p_postmortem::text);
    if v_bytes > c_max_bytes then
        return array[format('the postmortem has %s bytes of JSON, at most %s (256 KiB)', v_bytes, c_max_bytes)];
    end if;

    select pg_catalog.array_agg(k.key order by k.key) into v_unknown
      from pg_catalog.jsonb_object_keys(p_postmortem) as k (key)
     where k.key not in ('timeline', 'root_cause', 'what_worked', 'what_did_not_work', 'action_items',
                         'decision_log');
    if v_unknown is not null then
        v_problems := v_problems || ('unknown key ' || chat_v11.shown(v_unknown[1])
            || case when pg_catalog.cardinality(v_unknown) > 1
                    then format(' (and %s more)', pg_catalog.cardinality(v_unknown) - 1) else '' end);
    end if;

    -- LISTS (and root_cause, in the order the playbook reads them): a visible text, or 1 to 200 entries, each a
    -- visible text or an object of visible texts and numbers; decision_log may be left out
    foreach v_key in array array['timeline', 'root_cause', 'what_worked', 'what_did_not_work', 'decision_log'] loop
        v_value := p_postmortem -> v_key;
        v_problem := null;
        if v_key = 'root_cause' then
            foreach v_field in array array['technical', 'process'] loop
                v_value := p_postmortem #> array['root_cause', v_field];
                if coalesce(v_value, 'null') <> 'null' and pg_catalog.jsonb_typeof(v_value) <> 'string' then
                    v_problems := v_problems || format('root_cause.%s must be a text, got a JSON %s', v_field,
                                                       pg_catalog.jsonb_typeof(v_value));
                elsif chat_v11.is_blank(v_value #>> '{}') then
                    v_problems := v_problems || format('root_cause.%s is missing', v_field);
                end if;
            end loop;
            continue;
        end if;
        if coalesce(v_value, 'null') = 'null' then
            if v_key <> 'decision_log' then
                v_problem := case when v_key = 'timeline' then 'timeline (UTC)' else v_key end || ' is missing';
            end if;
        elsif pg_catalog.jsonb_typeof(v_value) = 'string' then
            if chat_v11.is_blank(v_value #>> '{}') then
                v_problem := v_key || ' is missing (blank)';
            end if;
        elsif pg_catalog.jsonb_typeof(v_value) <> 'array' then
            v_problem := format('%s must be a text or an array, got a JSON %s', v_key,
                                pg_catalog.jsonb_typeof(v_value));
        elsif pg_catalog.jsonb_array_length(v_value) = 0 then
            v_problem := v_key || ' is missing (an empty array)';
        elsif pg_catalog.jsonb_array_length(v_value) > c_max_entries then
            v_problem := format('%s has %s entries, at most %s', v_key, pg_catalog.jsonb_array_length(v_value),
                                c_max_entries);
        else
            select format('%s entry %s %s', v_key, e.ord, p.problem) into v_problem
              from pg_catalog.jsonb_array_elements(v_value) with ordinality as e (entry, ord)
             cross join lateral (
                 select case pg_catalog.jsonb_typeof(e.entry)
                     when 'string' then case when chat_v11.is_blank(e.entry #>> '{}') then 'is blank' end
                     when 'object' then case
                         when e.entry = '{}' then 'is an empty object'
                         when exists (
                             select from pg_catalog.jsonb_each(e.entry) as f (key, value)
                              where pg_catalog.jsonb_typeof(f.value) not in ('string', 'number')
                                 or (pg_catalog.jsonb_typeof(f.value) = 'string'
                                     and chat_v11.is_blank(f.value #>> '{}'))
                         ) then 'has a blank, null or nested field'
                     end
                     else format('must be a text or an object, got a JSON %s', pg_catalog.jsonb_typeof(e.entry))
                 end as problem
             ) as p
             where p.problem is not null
             order by e.ord
             limit 1;
        end if;
        if v_problem is not null then
            v_problems := v_problems || v_problem;
        end if;
    end loop;

    -- ACTION ITEMS: 1 to 200 objects, kind test | alert | guardrail, title and owner visible text, deadline a real
    -- calendar date YYYY-MM-DD; the first 10 bad items are spelled out
    v_value := p_postmortem -> 'action_items';
    if pg_catalog.jsonb_typeof(v_value) is distinct from 'array' then
        return v_problems || 'action_items must be an array'::text;
    end if;
    if pg_catalog.jsonb_array_length(v_value) > c_max_entries then
        return v_problems || format('action_items has %s items, at most %s', pg_catalog.jsonb_array_length(v_value),
                                    c_max_entries);
    end if;
    for v_item, v_ord in
        select a.item, a.ord from pg_catalog.jsonb_array_elements(v_value) with ordinality as a (item, ord)
    loop
        v_problem := case
            when pg_catalog.jsonb_typeof(v_item) is distinct from 'object' then 'not an object'
            when coalesce(v_item ->> 'kind', '') not in ('test', 'alert', 'guardrail')
                then 'kind must be test, alert or guardrail'
            when coalesce(v_item -> 'title', 'null') = 'null' then 'title is missing'
            when pg_catalog.jsonb_typeof(v_item -> 'title') <> 'string'
                then format('title must be a text, got a JSON %s', pg_catalog.jsonb_typeof(v_item -> 'title'))
            when chat_v11.is_blank(v_item ->> 'title') then 'title is missing'
            when coalesce(v_item -> 'owner', 'null') = 'null' then 'owner is missing'
            when pg_catalog.jsonb_typeof(v_item -> 'owner') <> 'string'
                then format('owner must be a text (a person or a team), got a JSON %s',
                            pg_catalog.jsonb_typeof(v_item -> 'owner'))
            when chat_v11.is_blank(v_item ->> 'owner') then 'owner is missing'
            when coalesce(v_item -> 'deadline', 'null') = 'null' then 'deadline (YYYY-MM-DD) is missing'
            when pg_catalog.jsonb_typeof(v_item -> 'deadline') <> 'string'
                then format('deadline must be a date as text (YYYY-MM-DD), got a JSON %s',
                            pg_catalog.jsonb_typeof(v_item -> 'deadline'))
            when (v_item ->> 'deadline') !~ '^\d{4}-\d{2}-\d{2}$'
                then format('deadline %s is not a date written YYYY-MM-DD', chat_v11.shown(v_item ->> 'deadline'))
        end;
        if v_problem is null then
            -- a real calendar date, by arithmetic (no cast that could raise)
            v_date := v_item ->> 'deadline';
            v_year := substr(v_date, 1, 4)::integer;
            v_month := substr(v_date, 6, 2)::integer;
            v_day := substr(v_date, 9, 2)::integer;
            v_days := case
                when v_month = 2 and (v_year % 4 = 0 and v_year % 100 <> 0 or v_year % 400 = 0) then 29
                when v_month = 2 then 28
                when v_month in (4, 6, 9, 11) then 30
                else 31
            end;
            if v_year < 1 or v_month not between 1 and 12 or v_day not between 1 and v_days then
                v_problem := format('deadline %s is not a calendar date', chat_v11.shown(v_date));
            end if;
        end if;
        if v_problem is not null then
            v_bad_items := v_bad_items + 1;
            if v_bad_items <= c_shown_items then
                v_problems := v_problems || format('action item %s: %s', v_ord, v_problem);
            end if;
        end if;
    end loop;
    if v_bad_items > c_shown_items then
        v_problems := v_problems || format('%s more action items with problems', v_bad_items - c_shown_items);
    end if;
    select 'action items lack the kinds: ' || pg_catalog.string_agg(k.kind, ', ' order by k.ord) into v_problem
      from unnest(array['test', 'alert', 'guardrail']) with ordinality as k (kind, ord)
     where not exists (
         select from pg_catalog.jsonb_array_elements(v_value) as a (item) where a.item ->> 'kind' = k.kind
     );
    if v_problem is not null then
        v_problems := v_problems || v_problem;
    end if;
    return v_problems;
end
$$;

revoke all on function chat_v11.postmortem_problems(jsonb) from public;
comment on function chat_v11.postmortem_problems(jsonb) is
'What a postmortem lacks or gets wrong: at most 256 KiB of JSON; UTC timeline, what worked and what did not (and '
'decision_log when given) as a visible text or 1-200 non-blank entries; technical and process root cause as text; '
'1-200 action items of kinds test, alert and guardrail, each with a title, an owner (text) and a real deadline '
'(YYYY-MM-DD).';

-- >>> sql/0520_function_apply_transition.sql
-- Writes one accepted state change: the state row, its history row, a durable commit and a NOTIFY whose payload
-- carries the new head hash (an anchor for listeners). The caller holds the state lock and has checked every guard.
create or replace function chat_v11.apply_transition(
    p_action text,
    p_to_stage text,
    p_to_kill_switch boolean,
    p_promotion_frozen boolean,
    p_reason text,
    p_note text,
    p_gate_snapshot jsonb,
    p_actor text
)
returns chat_v11.rollout_state
language plpgsql
volatile
as $$
declare
    v_old chat_v11.rollout_state;
    v_new chat_v11.rollout_state;
    v_now timestamptz := pg_catalog.clock_timestamp();
    v_hash text;
begin
    -- durable even where the database default is off; lasts until this transaction ends
    perform pg_catalog.set_config('synchronous_commit', 'on', true);

    select s.* into strict v_old from chat_v11.rollout_state as s;
    update chat_v11.rollout_state as s
       set stage = p_to_stage,
           kill_switch = p_to_kill_switch,
           promotion_frozen = p_promotion_frozen,
           reason = p_reason,
           changed_by = session_user,
           actor = coalesce(p_actor, chat_v11.claimed_actor()),
           changed_at = v_now,
           version = s.version + 1
    returning s.* into strict v_new;

    insert into chat_v11.rollout_history (
        version, changed_at, changed_by, actor, action,
        from_stage, to_stage, from_kill_switch, to_kill_switch, promotion_frozen,
        reason, note, gate_snapshot, incident_id
    ) values (
        v_new.version, v_now, v_new.changed_by, v_new.actor, p_action,
        v_old.stage, v_new.stage, v_old.kill_switch, v_new.kill_switch, v_new.promotion_frozen,
        p_reason, p_note, p_gate_snapshot, chat_v11.open_incident_at('infinity')
    )
    returning hash into strict v_hash;

    perform pg_catalog.pg_notify('chat_v11_rollout', pg_catalog.json_build_object(
        'version', v_new.version,
        'action', p_action,
        'stage', v_new.stage,
        'traffic_percent', (select t.traffic_percent from chat_v11.stage as t where t.stage = v_new.stage),
        'kill_switch', v_new.kill_switch,
        'promotion_frozen', v_new.promotion_frozen,
        'changed_at', pg_catalog.to_char(v_now at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
        'changed_by', v_new.changed_by,
        'actor', v_new.actor,
        'hash', v_hash
    )::text);
    return v_new;
end
$$;

revoke all on function chat_v11.apply_transition(text, text, boolean, boolean, text, text, jsonb, text) from public;
comment on function chat_v11.apply_transition(text, text, boolean, boolean, text, text, jsonb, text) is
'Writes an accepted state change (state row + history row + NOTIFY chat_v11_rollout with the head version and hash), '
'committed durably.';

-- >>> sql/0560_function_put_samples.sql
-- Validates and stores a batch of typed samples (parallel arrays, position = sample number), all or
-- nothing; then judges any P0 event of the batch at once (chat_v11.auto_kill). Returns the count written.
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
        perform chat_v11.auto_kill(v_evidence, 'ingestion');
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

-- >>> sql/0561_function_refuse_samples.sql
-- The exact, slow validation of an ingestion batch (SPEC 4.4), run only when the fast checks of
-- chat_v11.put_samples saw something wrong: raises the refusal of the first bad sample by position
-- (RO021-RO024, chat_v11.sample_problem), else of the first bucket sent twice (RO025); returns when the
-- batch has neither. The bad sample is quoted with its bucket_start in UTC (alignment is counted in UTC).
create or replace function chat_v11.refuse_samples(
    p_metric text[],
    p_cohort text[],
    p_bucket_start timestamptz[],
    p_numerator bigint[],
    p_denominator bigint[],
    p_value double precision[],
    p_now timestamptz
)
returns void
language plpgsql
stable
as $$
declare
    v_total integer := coalesce(pg_catalog.cardinality(p_metric), 0);
    v_bad record;
begin
    select x.ord, p.code, p.problem,
           pg_catalog.json_build_object('metric', x.metric, 'cohort', x.cohort,
                                        'bucket_start', (pg_catalog.to_json(x.bucket_start at time zone 'UTC') #>> '{}')
                                        || 'Z',
                                        'numerator', x.numerator, 'denominator', x.denominator,
                                        'value', x.value)::text as sample
      into v_bad
      from unnest(p_metric, p_cohort, p_bucket_start, p_numerator, p_denominator, p_value)
               with ordinality as x (metric, cohort, bucket_start, numerator, denominator, value, ord)
      left join chat_v11.metric as m on m.metric = x.metric
     cross join lateral chat_v11.sample_problem(
         m.kind, x.metric, x.cohort, x.bucket_start, x.numerator, x.denominator, x.value, p_now
     ) as p
     order by x.ord
     limit 1;
    if v_bad.ord is null then
        select d.ord, 'RO025' as code,
               format('it repeats metric, cohort and bucket_start of sample %s', d.first_ord) as problem,
               pg_catalog.json_build_object('metric', d.metric, 'cohort', d.cohort, 'bucket_start',
                                            (pg_catalog.to_json(d.bucket_start at time zone 'UTC') #>> '{}') || 'Z'
               )::text as sample
          into v_bad
          from (
              select x.ord, x.metric, x.cohort, x.bucket_start,
                     pg_catalog.min(x.ord) over (partition by x.metric, x.cohort, x.bucket_start) as first_ord
                from unnest(p_metric, p_cohort, p_bucket_start) with ordinality as x (metric, cohort, bucket_start, ord)
          ) as d
         where d.ord <> d.first_ord
         order by d.ord
         limit 1;
    end if;
    if v_bad.ord is not null then
        perform chat_v11.reject_sample(v_bad.ord, v_total, v_bad.code, v_bad.problem, v_bad.sample);
    end if;
end
$$;

revoke all on function chat_v11.refuse_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[],
    timestamptz
) from public;
comment on function chat_v11.refuse_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[],
    timestamptz
) is
'Slow path of ingestion: raises the refusal of the first bad sample of a batch by position (RO021-RO024), else '
'of the first repeated bucket (RO025); returns when there is neither.';

-- >>> sql/0655_function_verify_history.sql
-- The verify walk behind chat_verify_v11_history(), chat_verify_v11_history_full() and the checkpoints: findings
-- (first bad version, kind, problem) over the chain from p_full ? 1 : the newest checkpoint, the state and an anchor.
create or replace function chat_v11.verify_history(p_full boolean, p_anchor_version bigint, p_anchor_hash text)
returns table (
    ok boolean,
    rows_checked bigint,
    first_broken_version bigint,
    kind text,
    problem text,
    checked_from bigint,
    head_version bigint,
    head_hash text
)
language plpgsql
stable
set search_path = pg_catalog, chat_v11, pg_temp
-- a generic plan cannot see that the walk starts near the head (the checkpoint): plan each call for its range
set plan_cache_mode = force_custom_plan
as $$
declare
    v_from bigint := 1::bigint;
    v_checkpoint_version bigint;
    v_checkpoint_hash text;
begin
    if p_full is null
        or (p_anchor_version is null) <> (p_anchor_hash is null)
        or p_anchor_version < 1
        or p_anchor_hash !~ '^[0-9a-f]{64}$' then
        raise exception using
            errcode = 'RO011',
            message = format('invalid verify arguments: full %s, anchor version %s, anchor hash %s',
                             coalesce(p_full::text, 'null'), coalesce(p_anchor_version::text, 'null'),
                             coalesce(chat_v11.shown(p_anchor_hash), 'null')),
            detail = 'p_full is true or false; an anchor is a version >= 1 and its hash, 64 lowercase hex digits, '
                     'both or neither.',
            hint = 'Take the anchor from a notification''s version and hash, or from chat-rollout status.';
    end if;
    if not p_full then
        select c.version, c.hash into v_checkpoint_version, v_checkpoint_hash
          from chat_v11.history_checkpoint as c
         where c.walked_from is not null
         order by c.checkpoint_id desc
         limit 1;
        v_from := coalesce(v_checkpoint_version, 1);
    end if;

    return query
    with state as (
        select s.stage, s.kill_switch, s.promotion_frozen, s.reason, s.changed_by, s.actor, s.changed_at, s.version,
               s.xmin as row_xmin
          from chat_v11.rollout_state as s
    ),
    head as (
        select h.version, h.to_stage, h.to_kill_switch, h.promotion_frozen, h.reason, h.changed_by, h.actor,
               h.changed_at, h.hash, h.xmin as row_xmin
          from chat_v11.rollout_history as h
         order by h.version desc
         limit 1
    ),
    chain as (
        select h.version, h.prev_hash, h.hash, chat_v11.history_row_hash(h) as recomputed,
               h.from_stage, h.from_kill_switch, h.xmin as row_xmin,
               lag(h.version) over w as prev_version,
               lag(h.hash) over w as prev_row_hash,
               lag(h.to_stage) over w as prev_to_stage,
               lag(h.to_kill_switch) over w as prev_to_kill_switch
          from chat_v11.rollout_history as h
         where h.version >= v_from
        window w as (order by h.version)
    ),
    findings (version, kind, problem) as (
        select coalesce(c.prev_version, 0) + 1, 'gap',
               format('versions %s to %s are missing (version %s follows version %s)',
                      coalesce(c.prev_version, 0) + 1, c.version - 1, c.version, coalesce(c.prev_version, 0))
          from chain as c
         where c.version <> coalesce(c.prev_version, 0) + 1
           and (c.prev_version is not null or v_from = 1)
        union all
        select c.version, 'null', format('version %s has a NULL %s', c.version,
                                         concat_ws(' and ', case when c.hash is null then 'hash' end,
                                                   case when c.prev_hash is null then 'prev_hash' end))
          from chain as c
         where c.hash is null or c.prev_hash is null
        union all
        select c.version, 'hash_mismatch',
               format('version %s was changed after it was written: its hash does not match its content', c.version)
          from chain as c
         where c.hash <> c.recomputed
        union all
        select c.prev_version, 'broken_link',
               format('the hash of version %s is not the prev_hash version %s recorded: version %s was rewritten '
                      'with its hash recomputed', c.prev_version, c.version, c.prev_version)
          from chain as c
         where c.prev_version = c.version - 1 and c.prev_hash <> c.prev_row_hash
        union all
        select 1::bigint, 'broken_link', 'version 1 does not start the chain: its prev_hash is not 64 zeros'
          from chain as c
         where c.version = 1 and c.prev_hash <> repeat('0', 64)
        union all
        select c.version, 'discontinuity',
               format('version %s starts at stage %s, kill switch %s, but version %s ended at stage %s, kill switch %s',
                      c.version, c.from_stage, c.from_kill_switch, c.prev_version, c.prev_to_stage,
                      c.prev_to_kill_switch)
          from chain as c
         where c.prev_version = c.version - 1
           and (c.from_stage, c.from_kill_switch) is distinct from (c.prev_to_stage, c.prev_to_kill_switch)
        union all
        -- the head history row is written with the state row, in one transaction: a head newer than the state row
        -- was rewritten or re-inserted, with every row sharing its transaction (older rows are not compared with
        -- the state row: concurrent calls take their xids in another order than the lock gives them versions)
        select min(c.version), 'written_after_state',
               format('%s history row(s) from version %s on were written in the transaction that last wrote the head '
                      '(version %s), after the state row: rewritten or re-inserted', count(*), min(c.version),
                      max(hd.version))
          from chain as c, state as s, head as hd
         where c.row_xmin operator(pg_catalog.=) hd.row_xmin
           and not hd.row_xmin operator(pg_catalog.=) s.row_xmin
           and pg_catalog.age(hd.row_xmin) < pg_catalog.age(s.row_xmin)
        having count(*) > 0
        union all
        select v_checkpoint_version, 'checkpoint_mismatch',
               format('version %s was checkpointed with hash %s but %s', v_checkpoint_version,
                      left(v_checkpoint_hash, 16), coalesce('its hash is now ' || left(h.hash, 16),
                                                           'the history has no such row'))
          from (select 1) as one
          left join chat_v11.rollout_history as h on h.version = v_checkpoint_version
         where v_checkpoint_version is not null and h.hash is distinct from v_checkpoint_hash
        union all
        select p_anchor_version, 'anchor_mismatch',
               format('the anchor says version %s has hash %s but %s: the history up to version %s was rewritten',
                      p_anchor_version, left(p_anchor_hash, 16),
                      coalesce('its hash is ' || left(h.hash, 16), 'the history has no such row'), p_anchor_version)
          from (select 1) as one
          left join chat_v11.rollout_history as h on h.version = p_anchor_version
         where p_anchor_version is not null and h.hash is distinct from p_anchor_hash
        union all
        select 1::bigint, 'empty_history', 'the history has no rows'
         where not exists (select from head)
        union all
        select null::bigint, 'missing_state', 'the rollout state row is missing'
         where not exists (select from state)
        union all
        select least(s.version, hd.version) + 1, 'state_mismatch',
               format('the state is at version %s but the history ends at version %s', s.version, hd.version)
          from state as s, head as hd
         where s.version <> hd.version
        union all
        select hd.version, 'state_mismatch',
               format('the state row differs from history version %s in: %s', hd.version, concat_ws(', ',
                   case when s.stage is distinct from hd.to_stage then 'stage' end,
                   case when s.kill_switch is distinct from hd.to_kill_switch then 'kill_switch' end,
                   case when s.promotion_frozen is distinct from hd.promotion_frozen then 'promotion_frozen' end,
                   case when s.reason is distinct from hd.reason then 'reason' end,
                   case when s.changed_by is distinct from hd.changed_by then 'changed_by' end,
                   case when s.actor is distinct from hd.actor then 'actor' end,
                   case when s.changed_at is distinct from hd.changed_at then 'changed_at' end))
          from state as s, head as hd
         where s.version = hd.version
           and (s.stage, s.kill_switch, s.promotion_frozen, s.reason, s.changed_by, s.actor, s.changed_at)
               is distinct from
               (hd.to_stage, hd.to_kill_switch, hd.promotion_frozen, hd.reason, hd.changed_by, hd.actor, hd.changed_at)
        union all
        -- chat_v11.apply_transition writes both rows in one transaction; a stage settings change (config_change)
        -- or an acknowledged migration/restore (history_checkpoint.state_xmin) may rewrite the state row alone
        select hd.version, 'state_xmin',
               format('the state row and history version %s were not written in one transaction: '
                      'the state row was rewritten outside a state change', hd.version)
          from state as s, head as hd
         where s.version = hd.version
           and not s.row_xmin operator(pg_catalog.=) hd.row_xmin
           and not exists (select from chat_v11.config_change as cc where cc.xmin operator(pg_catalog.=) s.row_xmin)
           and not exists (select from chat_v11.history_checkpoint as k
                            where k.version = hd.version and k.state_xmin operator(pg_catalog.=) s.row_xmin)
    ),
    summary as (
        select (select count(*) from chain) as rows_checked, not exists (select from findings) as ok
    )
    select sm.ok, sm.rows_checked, f.version, f.kind, f.problem, v_from,
           (select hd.version from head as hd), (select hd.hash from head as hd)
      from summary as sm
      left join findings as f on true
     order by f.version nulls last, f.kind;
end
$$;

revoke all on function chat_v11.verify_history(boolean, bigint, text) from public;
comment on function chat_v11.verify_history(boolean, bigint, text) is
'The findings of a verify run (see public.chat_verify_v11_history); p_full walks from version 1, else from the newest '
'checkpoint.';

-- >>> sql/0660_function_chat_verify_v11_history.sql
-- Verifies the rollout history from the newest checkpoint (flat cost; any reader, on a standby too): one row per
-- finding, first bad version first, or one ok row; with an anchor (version, hash) kept outside the database.
create or replace function public.chat_verify_v11_history(
    p_anchor_version bigint default null,
    p_anchor_hash text default null
)
returns table (
    ok boolean,
    rows_checked bigint,
    first_broken_version bigint,
    kind text,
    problem text,
    checked_from bigint,
    head_version bigint,
    head_hash text
)
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    select * from chat_v11.verify_history(false, p_anchor_version, p_anchor_hash)
$$;

revoke all on function public.chat_verify_v11_history(bigint, text) from public;
grant execute on function public.chat_verify_v11_history(bigint, text) to chat_rollout_reader;
comment on function public.chat_verify_v11_history(bigint, text) is
'Verifies the rollout history from the newest checkpoint: one row per finding (first bad version, kind, problem; the '
'first version first) or one ok row, with the rows checked, where the walk started and the head (version, hash) to '
'keep as an anchor; p_anchor_version/p_anchor_hash check a head seen earlier. Read-only; docs/design.md "Trust".';

-- >>> sql/0662_function_chat_verify_v11_history_full.sql
-- Verifies every row of the rollout history (a cost that grows with it: operators and admins only), with the same
-- findings as chat_verify_v11_history() and an optional anchor (version, hash) kept outside the database.
create or replace function public.chat_verify_v11_history_full(
    p_anchor_version bigint default null,
    p_anchor_hash text default null
)
returns table (
    ok boolean,
    rows_checked bigint,
    first_broken_version bigint,
    kind text,
    problem text,
    checked_from bigint,
    head_version bigint,
    head_hash text
)
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    select * from chat_v11.verify_history(true, p_anchor_version, p_anchor_hash)
$$;

revoke all on function public.chat_verify_v11_history_full(bigint, text) from public;
grant execute on function public.chat_verify_v11_history_full(bigint, text) to chat_rollout_operator;
grant execute on function public.chat_verify_v11_history_full(bigint, text) to chat_rollout_admin;
comment on function public.chat_verify_v11_history_full(bigint, text) is
'Verifies every row of the rollout history (chat_verify_v11_history walks from the newest checkpoint): the same '
'findings and anchor check. Read-only; operators and admins (a full walk costs time proportional to the history).';

-- >>> sql/0665_function_chat_checkpoint_v11_history.sql
-- Verifies the history and, when nothing is found, records a checkpoint at the head: later verifies start there,
-- so their cost stays flat. p_accept_state also acknowledges a state row rewritten by a restore you performed.
create or replace function public.chat_checkpoint_v11_history(
    p_full boolean default false,
    p_accept_state boolean default false
)
returns chat_v11.history_checkpoint
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
declare
    v_finding record;
    v_found boolean := false;
    v_first_version bigint;
    v_first_kind text;
    v_first_problem text;
    v_head_version bigint;
    v_head_hash text;
    v_from bigint;
    v_state_xmin xid;
    v_checkpoint chat_v11.history_checkpoint;
begin
    if p_full is null or p_accept_state is null then
        raise exception using
            errcode = 'RO011',
            message = 'p_full and p_accept_state must be true or false, not null',
            detail = 'chat_checkpoint_v11_history(p_full, p_accept_state) verifies, then records a checkpoint.',
            hint = 'Call chat_checkpoint_v11_history() or chat_checkpoint_v11_history(true).';
    end if;
    for v_finding in select * from chat_v11.verify_history(p_full, null, null) loop
        v_head_version := v_finding.head_version;
        v_head_hash := v_finding.head_hash;
        v_from := v_finding.checked_from;
        if not v_found and not v_finding.ok and not (p_accept_state and v_finding.kind = 'state_xmin') then
            v_found := true;
            v_first_version := v_finding.first_broken_version;
            v_first_kind := v_finding.kind;
            v_first_problem := v_finding.problem;
        end if;
    end loop;
    if v_found or v_head_version is null then
        raise exception using
            errcode = 'RO039',
            message = 'no checkpoint written: the rollout history does not verify',
            detail = case when v_found
                          then format('First finding: version %s, %s: %s',
                                      coalesce(v_first_version::text, '-'), v_first_kind, v_first_problem)
                          else 'The history has no rows.' end,
            hint = 'List every finding with select * from chat_verify_v11_history(true); compare the head with an '
                   'anchor kept outside the database and restore from a backup if it differs.';
    end if;
    -- the state row as it is now, when it still belongs to the verified head
    select s.xmin into v_state_xmin from chat_v11.rollout_state as s where s.version = v_head_version;
    insert into chat_v11.history_checkpoint (version, hash, state_xmin, walked_from)
    values (v_head_version, v_head_hash, v_state_xmin, v_from)
    returning * into v_checkpoint;
    return v_checkpoint;
end
$$;

revoke all on function public.chat_checkpoint_v11_history(boolean, boolean) from public;
grant execute on function public.chat_checkpoint_v11_history(boolean, boolean) to chat_rollout_operator;
grant execute on function public.chat_checkpoint_v11_history(boolean, boolean) to chat_rollout_admin;
comment on function public.chat_checkpoint_v11_history(boolean, boolean) is
'Verifies the history (from the newest checkpoint, or every row with p_full) and records a checkpoint at the head when '
'nothing is found (RO039 otherwise); p_accept_state acknowledges a state row rewritten by a restore. Operator, admin.';

-- >>> sql/0700_function_chat_put_v11_metric_samples.sql
-- Writes metric samples (a JSON array), all or nothing; a re-sent bucket replaces the stored one.
-- A P0 event in the batch is judged in the same transaction: with auto_kill on, a failing P0 check
-- engages the kill switch before this call returns.
create or replace function public.chat_put_v11_metric_samples(p_samples jsonb)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
declare
    v_bad record;
    v_total integer;
    v_metric text[];
    v_cohort text[];
    v_bucket timestamptz[];
    v_numerator bigint[];
    v_denominator bigint[];
    v_value double precision[];
    v_suspect boolean;
    v_problem text;
begin
    perform chat_v11.begin_write('chat_put_v11_metric_samples');
    if p_samples is null or pg_catalog.jsonb_typeof(p_samples) is distinct from 'array' then
        raise exception using
            errcode = 'RO020',
            message = 'p_samples must be a JSON array of sample objects',
            detail = format('Got %s.', coalesce(pg_catalog.jsonb_typeof(p_samples), 'null')),
            hint = 'Pass [{"metric": ..., "cohort": "canary", "bucket_start": "2026-11-26T10:00:10Z", '
                || '"numerator": 0, "denominator": 1200}, ...].';
    end if;
    v_total := pg_catalog.jsonb_array_length(p_samples);

    -- VALIDATE the JSON shape. Fast: whole-array tests that only say whether some sample breaks a rule of
    -- chat_v11.sample_shape_problem: every element an object (a JSON path in strict mode, no unwrapping); no key
    -- outside the six; then one JSON path in lax mode: a metric, cohort or bucket_start not a string or a
    -- bucket_start not ISO 8601 with an offset, a count or value neither a JSON number nor null, a negative,
    -- fractional or out-of-range count, a value beyond 1e12. Only then the exact check names the first such
    -- sample by position.
    v_suspect := pg_catalog.jsonb_path_exists(p_samples, 'strict $[*] ? (@.type() != "object")');
    if not v_suspect then
        v_suspect := exists (
            select from pg_catalog.jsonb_array_elements(p_samples) as e (sample)
             where e.sample - '{metric,cohort,bucket_start,numerator,denominator,value}'::text[] <> '{}'::jsonb
        )
        or pg_catalog.jsonb_path_exists(p_samples, ('lax $[*] ? ('
            || '!(@.metric.type() == "string") || !(@.cohort.type() == "string")'
            || ' || !(@.bucket_start.type() == "string")'
            || ' || !(@.bucket_start like_regex '
            || '"^\\d{4}-\\d{2}-\\d{2}[T ]\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,6})?(Z|z|[+-]\\d{2}(:?\\d{2})?)$")'
            || ' || (exists (@.numerator) && !(@.numerator.type() == "number" || @.numerator.type() == "null"))'
            || ' || (exists (@.denominator) && !(@.denominator.type() == "number" || @.denominator.type() == "null"))'
            || ' || (exists (@.value) && !(@.value.type() == "number" || @.value.type() == "null"))'
            || ' || @.numerator < 0 || @.denominator < 0'
            || ' || @.numerator.floor() != @.numerator || @.denominator.floor() != @.denominator'
            || ' || @.numerator > 9223372036854775807 || @.denominator > 9223372036854775807'
            || ' || @.value > 1e12 || @.value < -1e12)')::jsonpath);
    end if;
    if v_suspect then
        select e.ord, p.code, p.problem, e.sample::text as sample
          into v_bad
          from pg_catalog.jsonb_array_elements(p_samples) with ordinality as e (sample, ord)
         cross join lateral chat_v11.sample_shape_problem(e.sample) as p
         order by e.ord
         limit 1;
        if v_bad.ord is not null then
            perform chat_v11.reject_sample(v_bad.ord, v_total, v_bad.code, v_bad.problem, v_bad.sample);
        end if;
    end if;

    -- READ the fields into typed arrays in one pass, in the array's order (jsonb_to_recordset returns the elements
    -- in order). What passes the shape checks and still cannot be cast (a date such as 2026-13-45, a count written
    -- 1.0, a value of 1e-400) is named only when the cast fails: the first such sample, by position and field.
    begin
        select array_agg(x.metric), array_agg(x.cohort), array_agg(x.bucket_start), array_agg(x.numerator),
               array_agg(x.denominator), array_agg(x.value)
          into v_metric, v_cohort, v_bucket, v_numerator, v_denominator, v_value
          from pg_catalog.jsonb_to_recordset(p_samples) as x (
              metric text, cohort text, bucket_start timestamptz, numerator bigint, denominator bigint,
              value double precision
          );
    exception when data_exception then
        for v_bad in
            select e.ord, e.sample
              from pg_catalog.jsonb_array_elements(p_samples) with ordinality as e (sample, ord)
             order by e.ord
        loop
            v_problem := chat_v11.sample_field_problem(v_bad.sample);
            if v_problem is not null then
                perform chat_v11.reject_sample(v_bad.ord, v_total, 'RO022', v_problem, v_bad.sample::text);
            end if;
        end loop;
        raise exception using
            errcode = 'RO022',
            message = format('a sample of %s could not be read: %s', v_total, chat_v11.shown(sqlerrm)),
            detail = 'No sample could be named. Nothing was written.',
            hint = 'Fix the sample and send the whole batch again; samples are '
                || '{metric, cohort, bucket_start, numerator, denominator, value}.';
    end;
    return chat_v11.put_samples(v_metric, v_cohort, v_bucket, v_numerator, v_denominator, v_value);
end
$$;

revoke all on function public.chat_put_v11_metric_samples(jsonb) from public;
grant execute on function public.chat_put_v11_metric_samples(jsonb) to chat_rollout_ingest;
comment on function public.chat_put_v11_metric_samples(jsonb) is
'Metric writers: store 10-second samples [{metric, cohort, bucket_start, numerator, denominator, value}], '
'all or nothing (a bad sample is named with a project SQLSTATE), a re-sent bucket replaces the old one. A P0 '
'event is judged in the same transaction: with auto_kill on, a failing P0 check engages the kill switch. '
'Returns the number of samples written. The columnar overload (arrays) is the fast bulk path.';

-- >>> sql/0705_function_chat_put_v11_metric_samples_columnar.sql
-- The fast bulk path: the same ingestion with one array per field (position = sample number), so a
-- writer sends binary arrays (psycopg adapts Python lists) instead of JSON text. Same rules, same guard; every
-- array one-dimensional (RO020).
create or replace function public.chat_put_v11_metric_samples(
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
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
declare
    v_n integer := coalesce(pg_catalog.cardinality(p_metric), 0);
begin
    perform chat_v11.begin_write('chat_put_v11_metric_samples');
    if p_metric is null
       or coalesce(pg_catalog.cardinality(p_cohort), -1) <> v_n
       or coalesce(pg_catalog.cardinality(p_bucket_start), -1) <> v_n
       or coalesce(pg_catalog.cardinality(p_numerator), v_n) <> v_n
       or coalesce(pg_catalog.cardinality(p_denominator), v_n) <> v_n
       or coalesce(pg_catalog.cardinality(p_value), v_n) <> v_n
       or pg_catalog.array_ndims(p_metric) > 1
       or pg_catalog.array_ndims(p_cohort) > 1
       or pg_catalog.array_ndims(p_bucket_start) > 1
       or pg_catalog.array_ndims(p_numerator) > 1
       or pg_catalog.array_ndims(p_denominator) > 1
       or pg_catalog.array_ndims(p_value) > 1 then
        raise exception using
            errcode = 'RO020',
            message = 'the sample arrays must be one-dimensional and of the same length',
            detail = format('metric %s, cohort %s, bucket_start %s, numerator %s, denominator %s, value %s elements'
                            || '; dimensions %s, %s, %s, %s, %s, %s.',
                            coalesce(pg_catalog.cardinality(p_metric)::text, 'null'),
                            coalesce(pg_catalog.cardinality(p_cohort)::text, 'null'),
                            coalesce(pg_catalog.cardinality(p_bucket_start)::text, 'null'),
                            coalesce(pg_catalog.cardinality(p_numerator)::text, 'null'),
                            coalesce(pg_catalog.cardinality(p_denominator)::text, 'null'),
                            coalesce(pg_catalog.cardinality(p_value)::text, 'null'),
                            coalesce(pg_catalog.array_ndims(p_metric), 0), coalesce(pg_catalog.array_ndims(p_cohort), 0),
                            coalesce(pg_catalog.array_ndims(p_bucket_start), 0),
                            coalesce(pg_catalog.array_ndims(p_numerator), 0),
                            coalesce(pg_catalog.array_ndims(p_denominator), 0),
                            coalesce(pg_catalog.array_ndims(p_value), 0)),
            hint = 'Pass one element per sample in every array; numerator, denominator or value may be a null '
                || 'array when no sample has that field.';
    end if;
    return chat_v11.put_samples(p_metric, p_cohort, p_bucket_start, p_numerator, p_denominator, p_value);
end
$$;

revoke all on function public.chat_put_v11_metric_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[]
) from public;
grant execute on function public.chat_put_v11_metric_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[]
) to chat_rollout_ingest;
comment on function public.chat_put_v11_metric_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[]
) is
'Metric writers, fast bulk path: the same ingestion as the JSON form with one array per field (metric, cohort, '
'bucket_start, numerator, denominator, value; position = sample number). All or nothing, same SQLSTATEs, same '
'automatic kill.';

-- >>> sql/0820_function_chat_log_v11_incident.sql
-- The scribe's record: a fact, a decision, an action, the client fallback confirmed, or the root cause by layer
-- ('layer: cause', both named: RO031 without either).
create or replace function public.chat_log_v11_incident(p_incident_id bigint, p_kind text, p_text text)
returns table (entry_id bigint, incident_id bigint, at timestamptz, recorded_by text, kind text, body text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_text text := chat_v11.checked_reason(p_text);
    v_entry chat_v11.incident_entry;
    v_layer text;
begin
    perform chat_v11.begin_write('chat_log_v11_incident');
    perform chat_v11.incident_for_change(p_incident_id);
    if p_kind is null or p_kind not in ('fact', 'decision', 'action', 'fallback_confirmed', 'root_cause') then
        raise exception using
            errcode = 'RO031',
            message = format('unknown timeline entry kind %s', chat_v11.shown(p_kind)),
            detail = 'Kinds: fact, decision, action, fallback_confirmed (the client fallback is confirmed), '
                || 'root_cause (''layer: cause'', layer one of backend, frontend, sre, database, network).',
            hint = 'For example: chat_log_v11_incident(7, ''decision'', ''keep the kill switch on'').';
    end if;
    if p_kind = 'root_cause' then
        v_layer := lower(split_part(v_text, ':', 1));
        if v_layer not in ('backend', 'frontend', 'sre', 'database', 'network') or position(':' in v_text) = 0 then
            raise exception using
                errcode = 'RO031',
                message = 'a root cause names its layer first',
                detail = 'Layers: backend (commit path, idempotency, receipt emission), frontend (fallback state '
                    || 'machine, pending/drift), sre (lag, throttling, saturation), database, network.',
                hint = 'For example: ''backend: receipt not emitted for duplicate ACKs''.';
        end if;
        -- ... then the cause itself, after the colon: visible text, not only blanks or invisible characters
        if chat_v11.is_blank(substr(v_text, position(':' in v_text) + 1)) then
            raise exception using
                errcode = 'RO031',
                message = format('a root cause names its cause after the layer: %s has none', chat_v11.shown(v_text)),
                detail = 'A root cause is ''layer: cause''; the text after the colon is empty or shows nothing.',
                hint = 'For example: ''backend: receipt not emitted for duplicate ACKs''.';
        end if;
    end if;
    v_entry := chat_v11.incident_log(p_incident_id, p_kind, v_text,
                                     case when v_layer is not null then jsonb_build_object('layer', v_layer) end);
    return query select v_entry.entry_id, v_entry.incident_id, v_entry.at, v_entry.recorded_by, v_entry.kind,
                        v_entry.body;
end
$$;

revoke all on function public.chat_log_v11_incident(bigint, text, text) from public;
grant execute on function public.chat_log_v11_incident(bigint, text, text) to chat_rollout_operator;
comment on function public.chat_log_v11_incident(bigint, text, text) is
'Append to an incident''s UTC timeline: fact, decision (the IC''s, every 10 minutes), action, fallback_confirmed, '
'or root_cause (''layer: cause'', the layer and a cause both required, else RO031). Entries are never rewritten.';

-- >>> migrations/steps/0007_z_acknowledge_state.sql
-- phase: after
-- Revision 0007: a state row an earlier migration rewrote (0005 added traffic_percent) has another xmin than the
-- newest history row; record it as acknowledged (no walk: walked_from is null) so verify names only later rewrites.
insert into chat_v11.history_checkpoint (version, hash, state_xmin, walked_from)
select
    h.version,
    h.hash,
    s.xmin as state_xmin,
    null as walked_from
from chat_v11.rollout_state as s
inner join chat_v11.rollout_history as h on s.version = h.version
where not pg_catalog.texteq(s.xmin::text, h.xmin::text);
