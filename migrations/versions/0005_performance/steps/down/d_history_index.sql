-- Revision 0005 downgrade: the partial index of stage-changing history rows (the restored state_at does not use it).
-- PART 2
-- squawk-ignore require-concurrent-index-deletion -- a small table, inside the downgrade's transaction
drop index chat_v11.rollout_history_stage_change_idx;
