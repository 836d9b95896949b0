-- Downgrade of revision 0013: the restores bring back revision 0012's gate evaluation (chat_v11.cohort_window, which
-- stayed), the kill that evaluates before its commit, ingestion, guardrails and retention without the per-minute
-- totals; then the new objects go. Both tables hold derived data only (rebuilt from the samples, or by the next
-- evaluation): nothing an operator wrote is lost, so no RO013 guard.
-- PART 2
drop trigger metric_sample_minutes_insert on chat_v11.metric_sample;
drop trigger metric_sample_minutes_update on chat_v11.metric_sample;
drop trigger metric_sample_minutes_delete on chat_v11.metric_sample;
drop function chat_v11.sample_minutes_changed();
drop function chat_v11.refresh_sample_minutes(text[], text[], timestamptz[]);
drop function chat_v11.window_totals(text, text, timestamptz, timestamptz, timestamptz, boolean);
drop function chat_v11.remember_gates(text, timestamptz);
drop table chat_v11.gate_evaluation;
drop table chat_v11.metric_minute;
