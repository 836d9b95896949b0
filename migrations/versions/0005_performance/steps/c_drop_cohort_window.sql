-- phase: after
-- Revision 0005: cohort_window takes a fifth argument (a lower bound the generic plan prunes partitions with);
-- the four-argument form of revision 0002 goes.
-- squawk-ignore ban-drop-function -- internal (never granted): only evaluate_checks of revisions 0002-0004 called this form
drop function chat_v11.cohort_window(text, text, timestamptz, timestamptz);
