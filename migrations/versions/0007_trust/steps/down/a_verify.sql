-- Revision 0007 downgrade: chat_verify_v11_history goes back to its four-column form without arguments (the restore
-- of sql/0660 below re-creates it); the full walk, the checkpoints and the walk helper go after the restores.
-- squawk-ignore ban-drop-function -- re-created by the restore of sql/0660 below, with its grants
drop function public.chat_verify_v11_history(bigint, text);
-- PART 2
drop function public.chat_checkpoint_v11_history(boolean, boolean);
drop function public.chat_verify_v11_history_full(bigint, text);
drop function chat_v11.verify_history(boolean, bigint, text);
drop table chat_v11.history_checkpoint;
