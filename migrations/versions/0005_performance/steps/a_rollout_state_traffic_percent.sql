-- covers: sql/0130_table_rollout_state.sql
-- Revision 0005, the hot read path: the state row carries its stage's traffic percent (the last column, as in
-- sql/0130), so chat_v11_read.rollout_state reads one table. The table holds exactly one row and this script
-- already holds it in EXCLUSIVE mode (migrations/env.py), under lock_timeout: the column is added nullable,
-- filled from the stage catalog, then made NOT NULL (a scan of one row). The triggers that keep it right
-- (sql/0512, 0514, 0516, 0517) are created further down, before anything can write the row again.
-- ACCESS EXCLUSIVE first, before anything else of this revision: ALTER TABLE needs it. Still an upgrade of
-- migrations/env.py's EXCLUSIVE lock: a state call that passed its peek (AccessShareLock) and waits for the row
-- behind that EXCLUSIVE deadlocks with it (40P01) unless env.py takes ACCESS EXCLUSIVE itself (docs/design.md).
lock table chat_v11.rollout_state in access exclusive mode;

alter table chat_v11.rollout_state add column traffic_percent numeric(5, 2);

update chat_v11.rollout_state as s
   set traffic_percent = t.traffic_percent
  from chat_v11.stage as t
 where t.stage = s.stage;

-- squawk-ignore adding-not-nullable-field -- one row, filled just above, under the migration's lock
alter table chat_v11.rollout_state alter column traffic_percent set not null;

comment on column chat_v11.rollout_state.traffic_percent is
'The current stage''s traffic percent (chat_v11.stage), kept right by triggers; the hot read path reads it here.';
