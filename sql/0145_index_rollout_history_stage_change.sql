-- The history rows that changed the stage (init, promote, rollback, a kill or resume to another stage): the
-- observation window counts from the newest one (chat_v11.state_at), found with one probe of this partial index
-- instead of a walk over the whole history.
-- squawk-ignore require-concurrent-index-creation -- the history is small (one row per operator call) and the
-- migration runs in one transaction; the build holds its SHARE lock for milliseconds.
create index rollout_history_stage_change_idx on chat_v11.rollout_history (version)
where action = 'init' or from_stage is distinct from to_stage;
