-- Changes a rollout policy, validated per key: auto_kill (boolean), p0_exit_window (30-60 minutes),
-- state_lock_timeout (100 ms - 60 s), retention (1-400 days), alert_source ({"required": boolean, "max_age":
-- 30 s - 1 h}), assignment_salt (1-200 characters, not blank; only while no traffic is in the canary: the state row
-- is taken first, in the state calls' lock order, so a racing promotion cannot slip between; RO040 otherwise),
-- approval_ttl (5 minutes - 7 days). A refusal (RO014) names the value and the range. A new salt is announced with
-- NOTIFY chat_v11_assignment.
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
        -- approval_ttl too (sql/0116_table_approval_policy.sql), same columns
        select p.* into v_old from chat_v11.approval_policy as p where p.key = p_key for update;
    end if;
    if not found then
        raise exception using
            errcode = 'RO014',
            message = format('unknown policy %s', chat_v11.shown(p_key)),
            detail = format('Known policies: %s.', (
                select string_agg(k.key, ', ' order by k.key)
                  from (select p.key from chat_v11.policy as p
                        union all select a.key from chat_v11.alert_policy as a
                        union all select a.key from chat_v11.assignment_policy as a
                        union all select a.key from chat_v11.approval_policy as a) as k
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
                when p_key = 'approval_ttl' and v_interval not between interval '5 minutes' and interval '7 days'
                    then format('approval_ttl must be between 5 minutes and 7 days; got %s', v_interval)
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
    update chat_v11.approval_policy as p
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
         where p.key = p_key
        union all
        select p.key, p.value, p.description, p.changed_at, p.changed_by
          from chat_v11.approval_policy as p
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
'while no traffic is in the canary, RO040; announced with NOTIFY chat_v11_assignment), approval_ttl (5 minutes - '
'7 days, default "24 hours": how long a promotion approval counts at most). Out-of-range values are refused '
'(RO014). Audited.';
