-- A changed traffic percent of the current stage is copied into the state row.
create trigger stage_traffic_percent_follows
after update of traffic_percent on chat_v11.stage
for each row
when (new.traffic_percent is distinct from old.traffic_percent)
execute function chat_v11.follow_stage_traffic_percent();
