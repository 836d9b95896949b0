-- Revision 0006 downgrade, partition maintenance: the restores bring back revision 0005's chat_run_v11_guardrails()
-- (partitions and retention inside the guardrails, under an advisory lock); then the maintenance function and its
-- lock table, new in 0006, go.
-- PART 2
drop function public.chat_run_v11_maintenance();
drop table chat_v11.maintenance;
