-- phase: after
-- Revision 0005: evaluate_checks reads the windows itself (with a lower bound the generic plan prunes partitions
-- with), so the per-window helper of revision 0002 goes.
-- squawk-ignore ban-drop-function -- internal (never granted): only evaluate_checks of revisions 0002-0004 called it
drop function chat_v11.cohort_window(text, text, timestamptz, timestamptz);
