-- Changes a stage's traffic percent (0-100, along the stage order) and minimum observation window (0 to 7 days);
-- null keeps a value. The traffic of the current stage never changes in place (RO019): the state row is taken
-- first (chat_v11.lock_state, RO010 when busy), then the stage row, so a racing promotion cannot slip between.
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
    v_state_stage text;
begin
    perform chat_v11.begin_write('chat_set_v11_stage_settings');
    -- values first, before any lock: a refusal names the value and the allowed range
    if p_traffic_percent = 'NaN'::numeric or p_traffic_percent not between 0 and 100 then
        raise exception using
            errcode = 'RO015',
            message = format('traffic percent %s is not valid for stage %s', p_traffic_percent,
                             chat_v11.shown(p_stage)),
            detail = format('Got %s; a traffic percent is between 0 and 100.', p_traffic_percent),
            hint = 'Traffic grows along the stage order; change the neighbouring stages first.';
    end if;
    if p_min_observation not between interval '0' and interval '7 days' then
        raise exception using
            errcode = 'RO015',
            message = format('minimum observation %s is not valid for stage %s', p_min_observation,
                             chat_v11.shown(p_stage)),
            detail = format('Got %s; the observation window is between 0 and 7 days.', p_min_observation),
            hint = 'Pass an interval such as ''30 minutes'' (or ''0'' for no waiting); nothing was changed.';
    end if;
    -- a percent change of the stage the rollout is at (as far as a read can tell) takes the state row first, in
    -- the state calls' lock order and bounded like them; the locked row then answers for certain
    if p_traffic_percent is not null and exists (
        select
          from chat_v11.peek_state() as p
          join chat_v11.stage as t on t.stage = p.stage
         where p.stage = p_stage and t.traffic_percent is distinct from p_traffic_percent
    ) then
        v_state_stage := (chat_v11.lock_state()).stage;
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
    if p_traffic_percent is not null and p_traffic_percent is distinct from v_old.traffic_percent then
        -- without the state row: a promotion into this stage that committed before the stage row was ours is seen
        -- now (it held the stage row FOR KEY SHARE until its commit); a later one waits for this change and copies
        -- the new percent (chat_v11.copy_stage_traffic_percent), which is a change before promoting into it
        if v_state_stage is null then
            select p.stage into v_state_stage from chat_v11.peek_state() as p;
            perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
        end if;
        if v_state_stage = p_stage then
            raise exception using
                errcode = 'RO019',
                message = 'traffic of the current stage cannot change in place',
                detail = format('The rollout is at stage %s with %s %% of the traffic; %s %% was asked. A change in '
                                'place would move traffic without a history row, a new version or a notification.',
                                p_stage, v_old.traffic_percent, p_traffic_percent),
                hint = format('Roll back to a lower stage first (chat_set_v11_rollout_state(''%s'', false, '
                              'reason)), change %s, then promote again; or change a stage before promoting into it. '
                              'Nothing was changed.',
                              coalesce((select s.stage from chat_v11.stage as s where s.ordinal < v_old.ordinal
                                         order by s.ordinal desc limit 1), 'off'),
                              p_stage);
        end if;
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
'observation window (0 to 7 days); null keeps the current value. The percent of the stage the rollout is at '
'cannot change in place (RO019). Every change is audited in chat_v11.config_change.';
