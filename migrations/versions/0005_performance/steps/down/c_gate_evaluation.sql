-- Revision 0005 downgrade: the restores bring back revision 0002's cohort_window(text, text, timestamptz,
-- timestamptz) and revision 0004's evaluate_checks, which calls it; then the five-argument form goes.
-- PART 2
drop function chat_v11.cohort_window(text, text, timestamptz, timestamptz, timestamptz);
