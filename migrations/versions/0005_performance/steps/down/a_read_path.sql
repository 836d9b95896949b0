-- Downgrade of revision 0005, the hot read path: runs first (part 1, before the restores), because it needs the
-- state table in ACCESS EXCLUSIVE mode: the sooner after migrations/env.py's lock, the fewer state calls can
-- hold a lock on it meanwhile (see the step's note on env.py). Nothing restored later names what is dropped: the
-- 0004 bodies of chat_get_v11_rollout_state() and chat_set_v11_stage_settings() read chat_v11.stage and
-- chat_v11.rollout_state only. No operator data is lost: rollout_state.traffic_percent is a copy of
-- chat_v11.stage.traffic_percent.
lock table chat_v11.rollout_state in access exclusive mode;
drop trigger rollout_state_traffic_percent on chat_v11.rollout_state;
drop trigger stage_traffic_percent_follows on chat_v11.stage;
drop function chat_v11.follow_stage_traffic_percent();
drop function chat_v11.copy_stage_traffic_percent();
drop view chat_v11_read.rollout_state;
drop schema chat_v11_read;
alter table chat_v11.rollout_state drop column traffic_percent;
