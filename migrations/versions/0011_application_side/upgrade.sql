-- >>> sql/0114_table_assignment_policy.sql
-- The rollout policy assignment_salt (SPEC 8): the salt of every user's bucket, set like every policy with
-- public.chat_set_v11_policy('assignment_salt', '"..."') and audited as one, kept in a table of its own for the
-- reason sql/0112_table_alert_policy.sql gives (adding a key to chat_v11.policy would alter a table state calls
-- read while a migration holds the state row). The default reproduces docs/assignment-vectors.json.
create table chat_v11.assignment_policy (
    key text not null default 'assignment_salt',
    value jsonb not null,
    description text not null,
    changed_at timestamptz not null default pg_catalog.now(),
    changed_by text not null default session_user,
    constraint assignment_policy_pkey primary key (key),
    constraint assignment_policy_key_known check (key = 'assignment_salt'),
    constraint assignment_policy_value_valid check (pg_catalog.jsonb_typeof(value) = 'string')
);

comment on table chat_v11.assignment_policy is
'The policy assignment_salt: the salt of every user''s bucket (public.chat_get_v11_assignment). Change with '
'public.chat_set_v11_policy(), only while no traffic is in the canary; every change is kept in chat_v11.config_change.';

insert into chat_v11.assignment_policy (key, value, description) values (
    'assignment_salt', '"chat_v11"',
    'The salt of every user''s bucket: sha256(salt || '':'' || user_key). '
    'Changes only while no traffic is in the canary.'
);

-- >>> sql/0322_function_assignment_bucket.sql
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

-- >>> sql/0641_function_chat_get_v11_assignment.sql
-- Whether a user is in the canary now (SPEC 8): in_canary = kill switch off and bucket < traffic_percent × 100.
-- The bucket does not depend on the stage and the stages' percents never decrease along the stage order
-- (chat_set_v11_stage_settings refuses one that would, RO015), so a user in the canary at one stage is in it at
-- every higher stage; the salt changes only while no traffic is in the canary (RO040). A reader function: stable,
-- writes nothing, answers on a hot standby. State and salt are read in one statement (one snapshot).
create or replace function public.chat_get_v11_assignment(p_user_key text)
returns table (
    in_canary boolean,
    bucket integer,
    stage text,
    traffic_percent numeric,
    kill_switch boolean,
    version bigint
)
language plpgsql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
begin
    if p_user_key is null then
        raise exception using
            errcode = 'RO011',
            message = 'a user key is required',
            detail = 'chat_get_v11_assignment(p_user_key) got null; the empty string is a key like any other.',
            hint = 'Pass the key the application splits traffic by, e.g. chat_get_v11_assignment(''user-42'').';
    end if;
    return query
        select not s.kill_switch and b.bucket < s.traffic_percent * 100,
               b.bucket,
               s.stage,
               s.traffic_percent,
               s.kill_switch,
               s.version
          from chat_v11.rollout_state as s
         cross join lateral (
                select chat_v11.assignment_bucket(p.value #>> '{}', p_user_key) as bucket
                  from chat_v11.assignment_policy as p
                 where p.key = 'assignment_salt'
               ) as b;
end
$$;

revoke all on function public.chat_get_v11_assignment(text) from public;
grant execute on function public.chat_get_v11_assignment(text) to chat_rollout_reader;
comment on function public.chat_get_v11_assignment(text) is
'Reader: is this user in the canary now? in_canary (kill switch off and bucket < traffic_percent x 100), bucket '
'(0-9999: first 4 bytes of sha256(salt || '':'' || key), unsigned, mod 10000; policy assignment_salt), stage, '
'traffic_percent, kill_switch, version. Monotone: a user in at one stage is in at every higher stage. Read-only; '
'works on a hot standby; null key refused (RO011). chat_rollout.client computes the same in the application.';

-- >>> sql/0643_function_chat_get_v11_assignment_policy.sql
-- The salt in effect (SPEC 8), for applications that compute assignments locally (chat_rollout.client): readers
-- cannot read chat_v11, and the salt is not a secret (it only spreads users over buckets).
create or replace function public.chat_get_v11_assignment_policy()
returns table (
    salt text,
    changed_at timestamptz,
    changed_by text
)
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    select p.value #>> '{}', p.changed_at, p.changed_by
      from chat_v11.assignment_policy as p
     where p.key = 'assignment_salt'
$$;

revoke all on function public.chat_get_v11_assignment_policy() from public;
grant execute on function public.chat_get_v11_assignment_policy() to chat_rollout_reader;
comment on function public.chat_get_v11_assignment_policy() is
'Reader: the assignment salt in effect (policy assignment_salt), when and by whom it was set. Read-only. A change '
'is announced with NOTIFY chat_v11_assignment (payload: salt, changed_at).';

-- >>> sql/0680_function_chat_set_v11_policy.sql
-- Changes a rollout policy, validated per key: auto_kill (boolean), p0_exit_window (30-60 minutes),
-- state_lock_timeout (100 ms - 60 s), retention (1-400 days), alert_source ({"required": boolean, "max_age":
-- 30 s - 1 h}), assignment_salt (1-200 characters, not blank; only while no traffic is in the canary: the state row
-- is taken first, in the state calls' lock order, so a racing promotion cannot slip between; RO040 otherwise). A
-- refusal (RO014) names the value and the range. A new salt is announced with NOTIFY chat_v11_assignment.
create or replace function public.chat_set_v11_policy(p_key text, p_value jsonb)
returns table (
    key text,
    value jsonb,
    description text,
    changed_at timestamptz,
    changed_by text
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
    v_old chat_v11.policy;
    v_interval interval;
    v_problem text;
    v_state record;
begin
    perform chat_v11.begin_write('chat_set_v11_policy');
    if p_key = 'assignment_salt' then
        -- the salt moves users between buckets: it may change only while nobody is in the canary, and the state
        -- row is held until commit (lock order: state row, then policy row) so no promotion commits in between
        select l.stage, l.traffic_percent, l.kill_switch into v_state from chat_v11.lock_state() as l;
        perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    end if;
    select p.* into v_old from chat_v11.policy as p where p.key = p_key for update;
    if not found then
        -- alert_source and assignment_salt live in tables of their own (sql/0112_table_alert_policy.sql,
        -- sql/0114_table_assignment_policy.sql), same columns
        select p.* into v_old from chat_v11.alert_policy as p where p.key = p_key for update;
    end if;
    if not found then
        select p.* into v_old from chat_v11.assignment_policy as p where p.key = p_key for update;
    end if;
    if not found then
        raise exception using
            errcode = 'RO014',
            message = format('unknown policy %s', chat_v11.shown(p_key)),
            detail = format('Known policies: %s.', (
                select string_agg(k.key, ', ' order by k.key)
                  from (select p.key from chat_v11.policy as p
                        union all select a.key from chat_v11.alert_policy as a
                        union all select a.key from chat_v11.assignment_policy as a) as k
            )),
            hint = 'Name one of the known policies.';
    end if;

    if p_key = 'auto_kill' then
        if jsonb_typeof(p_value) is distinct from 'boolean' then
            v_problem := 'auto_kill takes a JSON boolean: ''true'' or ''false''';
        end if;
    elsif p_key = 'alert_source' then
        if jsonb_typeof(p_value) is distinct from 'object'
           or (select array_agg(k order by k) from jsonb_object_keys(p_value) as k) is distinct from '{max_age,required}'
           or jsonb_typeof(p_value -> 'required') is distinct from 'boolean'
           or jsonb_typeof(p_value -> 'max_age') is distinct from 'string' then
            v_problem := 'alert_source takes a JSON object with exactly a boolean and an interval string, such as '
                || '''{"required": true, "max_age": "2 minutes"}''';
        else
            begin
                v_interval := (p_value ->> 'max_age')::interval;
            exception when others then
                v_problem := format('%s is not an interval', chat_v11.shown(p_value ->> 'max_age'));
            end;
            -- the age limit sizes a freshness check (p_at - max_age): bounded like every interval policy
            if v_problem is null and v_interval not between interval '30 seconds' and interval '1 hour' then
                v_problem := format('alert_source max_age must be between 30 seconds and 1 hour; got %s', v_interval);
            end if;
        end if;
    elsif p_key = 'assignment_salt' then
        if jsonb_typeof(p_value) is distinct from 'string' then
            v_problem := 'assignment_salt takes a JSON string, such as ''"chat_v11-2"''';
        elsif chat_v11.is_blank(p_value #>> '{}') or length(p_value #>> '{}') > 200 then
            v_problem := format('assignment_salt must be 1-200 characters and not blank; got %s characters',
                                length(p_value #>> '{}'));
        end if;
    elsif jsonb_typeof(p_value) is distinct from 'string' then
        v_problem := format('%s takes a JSON string holding an interval, such as ''"30 minutes"''', p_key);
    else
        begin
            v_interval := (p_value #>> '{}')::interval;
        exception when others then
            v_problem := format('%s is not an interval', chat_v11.shown(p_value #>> '{}'));
        end;
        if v_problem is null then
            -- every interval policy feeds a computation (now() - window, a lock timeout, a partition cutoff): an
            -- unbounded value overflows a timestamp (22008) or disables the guard it sizes
            v_problem := case
                when p_key = 'p0_exit_window' and v_interval not between interval '30 minutes' and interval '60 minutes'
                    then format('p0_exit_window must be between 30 and 60 minutes (playbook section 5); got %s',
                                v_interval)
                when p_key = 'state_lock_timeout'
                     and v_interval not between interval '100 milliseconds' and interval '60 seconds'
                    then format('state_lock_timeout must be between 100 milliseconds and 60 seconds; got %s',
                                v_interval)
                when p_key = 'retention' and v_interval not between interval '1 day' and interval '400 days'
                    then format('retention must be between 1 day and 400 days; got %s', v_interval)
            end;
        end if;
    end if;
    if v_problem is not null then
        raise exception using
            errcode = 'RO014',
            message = format('invalid value %s for policy %s', chat_v11.shown(p_value::text), p_key),
            detail = v_problem || '.',
            hint = format('Current value: %s; nothing was changed.', v_old.value);
    end if;

    if p_key <> 'assignment_salt' or p_value is not distinct from v_old.value then
        null;  -- v_state is read only for the salt (it is unassigned for every other key)
    elsif v_state.traffic_percent > 0 then
        raise exception using
            errcode = 'RO040',
            message = 'the assignment salt cannot change while traffic is in the canary',
            detail = format('The rollout is at stage %s with %s %% of the traffic (kill switch %s): a new salt would '
                            'move most of the canary''s users out of it and others in.', v_state.stage,
                            v_state.traffic_percent, case when v_state.kill_switch then 'on' else 'off' end),
            hint = 'Change the salt only at stage off, before the first promotion or after a rollback to off; '
                || 'nothing was changed.';
    end if;

    update chat_v11.policy as p
       set value = p_value, changed_at = clock_timestamp(), changed_by = session_user
     where p.key = p_key;
    update chat_v11.alert_policy as p
       set value = p_value, changed_at = clock_timestamp(), changed_by = session_user
     where p.key = p_key;
    update chat_v11.assignment_policy as p
       set value = p_value, changed_at = clock_timestamp(), changed_by = session_user
     where p.key = p_key;
    if p_key = 'assignment_salt' then
        -- applications that assign locally (chat_rollout.client) reload the salt when they hear this
        perform pg_catalog.pg_notify('chat_v11_assignment', pg_catalog.json_build_object(
            'salt', p_value #>> '{}',
            'changed_at', pg_catalog.to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
        )::text);
        raise notice using message = format('assignment salt changed to %s: every user''s bucket is recomputed; '
                                            'nobody is in the canary now (stage %s)', chat_v11.shown(p_value #>> '{}'),
                                            v_state.stage);
    end if;
    insert into chat_v11.config_change (actor, target, target_key, old_value, new_value)
    values (chat_v11.claimed_actor(), 'policy', p_key, v_old.value, p_value);
    return query
        select p.key, p.value, p.description, p.changed_at, p.changed_by from chat_v11.policy as p where p.key = p_key
        union all
        select p.key, p.value, p.description, p.changed_at, p.changed_by
          from chat_v11.alert_policy as p
         where p.key = p_key
        union all
        select p.key, p.value, p.description, p.changed_at, p.changed_by
          from chat_v11.assignment_policy as p
         where p.key = p_key;
end
$$;

revoke all on function public.chat_set_v11_policy(text, jsonb) from public;
grant execute on function public.chat_set_v11_policy(text, jsonb) to chat_rollout_admin;
comment on function public.chat_set_v11_policy(text, jsonb) is
'Admin: set a rollout policy. auto_kill (boolean, default true), p0_exit_window (30-60 minutes, default '
'"30 minutes"), state_lock_timeout (100 ms - 60 s, default "2 seconds"), retention (1-400 days, default '
'"30 days"), alert_source ({"required": false, "max_age": "2 minutes"}; max_age 30 s - 1 h; required makes a '
'fresh, reachable Alertmanager read a Go condition), assignment_salt (1-200 characters, default "chat_v11"; only '
'while no traffic is in the canary, RO040; announced with NOTIFY chat_v11_assignment). Out-of-range values are '
'refused (RO014). Audited.';
