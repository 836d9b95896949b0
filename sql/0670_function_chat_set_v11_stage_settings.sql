-- Changes a stage's traffic percent and minimum observation window (null keeps the current value).
-- The state row carries the current stage's percent (trigger chat_v11.follow_stage_traffic_percent): a change
-- of the current stage's percent takes the state row first, bounded like a state call (chat_v11.lock_state,
-- RO010), then the stage row -- the lock order of the state calls, so the two never deadlock. Any other change
-- takes no state lock. A kill waits behind it at most state_lock_timeout, as behind any state call.
create or replace function public.chat_set_v11_stage_settings(
    p_stage text,
    p_traffic_percent numeric default null,
    p_min_observation interval default null
)
returns table (
    stage text,
    ordinal integer,
    traffic_percent numeric,
    min_observation interval
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
    v_old chat_v11.stage;
    v_new chat_v11.stage;
    v_lower numeric;
    v_upper numeric;
begin
    perform chat_v11.begin_write('chat_set_v11_stage_settings');
    if p_traffic_percent is not null and exists (
        select
          from chat_v11.peek_state() as p
          join chat_v11.stage as t on t.stage = p.stage
         where p.stage = p_stage and t.traffic_percent is distinct from p_traffic_percent
    ) then
        perform chat_v11.lock_state();
    end if;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    select s.* into v_old from chat_v11.stage as s where s.stage = p_stage for update;
    if not found then
        raise exception using
            errcode = 'RO002',
            message = format('unknown stage %s', chat_v11.shown(p_stage)),
            detail = format('Known stages, in order: %s.',
                            (select string_agg(s.stage, ', ' order by s.ordinal) from chat_v11.stage as s)),
            hint = 'Name one of the known stages.';
    end if;
    if p_traffic_percent = 'NaN'::numeric or p_traffic_percent not between 0 and 100 then
        raise exception using
            errcode = 'RO015',
            message = format('traffic percent %s is not valid for stage %s', p_traffic_percent, p_stage),
            detail = 'A traffic percent is between 0 and 100.',
            hint = 'Traffic grows along the stage order; change the neighbouring stages first.';
    end if;
    v_new := v_old;
    v_new.traffic_percent := coalesce(p_traffic_percent, v_old.traffic_percent);
    v_new.min_observation := coalesce(p_min_observation, v_old.min_observation);

    select max(s.traffic_percent) filter (where s.ordinal < v_old.ordinal),
           min(s.traffic_percent) filter (where s.ordinal > v_old.ordinal)
      into v_lower, v_upper
      from chat_v11.stage as s;
    if v_new.traffic_percent = 'NaN'::numeric
       or v_new.traffic_percent not between 0 and 100
       or (v_old.stage = 'off' and v_new.traffic_percent <> 0)
       or v_new.traffic_percent < coalesce(v_lower, 0)
       or v_new.traffic_percent > coalesce(v_upper, 100) then
        raise exception using
            errcode = 'RO015',
            message = format('traffic percent %s is not valid for stage %s', v_new.traffic_percent, p_stage),
            detail = format('Stage %s must stay within %s..%s %% (the previous and next stages), and off is 0 %%.',
                            p_stage, coalesce(v_lower, 0), coalesce(v_upper, 100)),
            hint = 'Traffic grows along the stage order; change the neighbouring stages first.';
    end if;
    if v_new.min_observation < interval '0' then
        raise exception using
            errcode = 'RO015',
            message = format('minimum observation %s is not valid for stage %s', v_new.min_observation, p_stage),
            detail = 'The observation window is a duration of zero or more.',
            hint = 'Pass an interval such as ''30 minutes'' (or ''0'' for no waiting).';
    end if;

    update chat_v11.stage as s
       set traffic_percent = v_new.traffic_percent,
           min_observation = v_new.min_observation
     where s.stage = p_stage;
    insert into chat_v11.config_change (actor, target, target_key, old_value, new_value)
    values (
        chat_v11.claimed_actor(), 'stage', p_stage,
        jsonb_build_object('traffic_percent', v_old.traffic_percent, 'min_observation', v_old.min_observation),
        jsonb_build_object('traffic_percent', v_new.traffic_percent, 'min_observation', v_new.min_observation)
    );
    return query select v_new.stage, v_new.ordinal, v_new.traffic_percent, v_new.min_observation;
end
$$;

revoke all on function public.chat_set_v11_stage_settings(text, numeric, interval) from public;
grant execute on function public.chat_set_v11_stage_settings(text, numeric, interval) to chat_rollout_admin;
comment on function public.chat_set_v11_stage_settings(text, numeric, interval) is
'Admin: set a stage''s traffic percent (0-100, growing along the stage order, off = 0) and minimum '
'observation window (>= 0); null keeps the current value. Every change is audited in chat_v11.config_change.';
