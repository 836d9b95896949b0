-- Revision 0007: chat_verify_v11_history returns one row per finding (kind, head) and takes an anchor; a function's
-- result type cannot change in place, so the old form goes first (sql/0660 creates the new one with its grants).
-- squawk-ignore ban-drop-function -- re-created by sql/0660 in this same transaction, with its grants
drop function public.chat_verify_v11_history();
