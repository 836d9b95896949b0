-- Revision 0006 downgrade: chat_set_v11_rollout_state goes back to the result without the action column (the
-- restore of sql/0640 below re-creates it); the lock budget helpers and the earliest-resume helper go after it.
-- squawk-ignore ban-drop-function -- re-created by the restore of sql/0640 below, with the same grants
drop function public.chat_set_v11_rollout_state(text, boolean, text);
-- PART 2
drop function chat_v11.p0_exit_clean_at(timestamptz);
drop function chat_v11.bound_lock_wait(interval);
drop function chat_v11.start_lock_budget();
