-- Trigger function (BEFORE INSERT OR UPDATE OF stage on chat_v11.rollout_state): copies the stage's traffic
-- percent into the state row when the stage is set or changes. The stage row is read FOR KEY SHARE, the lock
-- the foreign key check takes right after anyway (so nothing waits longer than before), and that returns the
-- newest committed percent when a stage settings change was in flight. An unchanged stage keeps its percent:
-- a kill or hold at the current stage reads and locks nothing in chat_v11.stage.
create or replace function chat_v11.copy_stage_traffic_percent()
returns trigger
language plpgsql
set search_path = pg_catalog, chat_v11, pg_temp
as $$
begin
    if tg_op = 'UPDATE' and new.stage = old.stage then
        return new;
    end if;
    select t.traffic_percent into new.traffic_percent
      from chat_v11.stage as t
     where t.stage = new.stage
       for key share;
    if not found then
        raise exception using
            errcode = 'RO002',
            message = format('unknown stage %s', chat_v11.shown(new.stage)),
            detail = 'The rollout state names a stage of chat_v11.stage; its traffic percent comes from there.',
            hint = 'Name one of the known stages.';
    end if;
    return new;
end
$$;

revoke all on function chat_v11.copy_stage_traffic_percent() from public;
comment on function chat_v11.copy_stage_traffic_percent() is
'Trigger: copies the traffic percent of the state''s stage into chat_v11.rollout_state when the stage changes.';
