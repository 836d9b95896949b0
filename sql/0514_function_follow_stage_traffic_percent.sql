-- Trigger function (AFTER UPDATE OF traffic_percent on chat_v11.stage, when it changed): the state row keeps the
-- current stage's percent. Only a change of the current stage touches the state row, and it takes that row like
-- every state call does (chat_v11.lock_state: a wait bounded by state_lock_timeout, then RO010 naming the
-- blocker), so a kill behind it waits at most what it waits behind any other state call; other stages and
-- min_observation changes take no state lock at all. public.chat_set_v11_stage_settings() takes the state row
-- before the stage row (one lock order with the state calls); a direct owner UPDATE is kept right here too.
create or replace function chat_v11.follow_stage_traffic_percent()
returns trigger
language plpgsql
set search_path = pg_catalog, chat_v11, pg_temp
as $$
declare
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
begin
    -- peek_state reads the state within the state_lock_timeout bound (RO010 behind an ACCESS EXCLUSIVE holder)
    if exists (select from chat_v11.peek_state() as p where p.stage = new.stage) then
        perform chat_v11.lock_state();
        -- the locked row is the newest: a state call that moved the stage meanwhile leaves nothing to update
        update chat_v11.rollout_state as s
           set traffic_percent = new.traffic_percent
         where s.stage = new.stage;
    end if;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    return null;
end
$$;

revoke all on function chat_v11.follow_stage_traffic_percent() from public;
comment on function chat_v11.follow_stage_traffic_percent() is
'Trigger: a changed traffic percent of the current stage is copied into chat_v11.rollout_state (state lock bounded).';
