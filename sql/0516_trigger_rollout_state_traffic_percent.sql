-- The state row carries its stage's traffic percent: set on insert and whenever the stage changes.
create trigger rollout_state_traffic_percent
before insert or update of stage on chat_v11.rollout_state
for each row execute function chat_v11.copy_stage_traffic_percent();
