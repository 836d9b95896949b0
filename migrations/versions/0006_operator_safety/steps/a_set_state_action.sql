-- Revision 0006: chat_set_v11_rollout_state returns an action column (SPEC 4.6, no surprise); a function's result
-- type cannot change in place, so the old form goes first and sql/0640 creates the new one with its grants.
-- squawk-ignore ban-drop-function -- re-created by sql/0640 in this same transaction, with the same grants
drop function public.chat_set_v11_rollout_state(text, boolean, text);
