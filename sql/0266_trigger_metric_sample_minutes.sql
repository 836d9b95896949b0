-- The per-minute totals follow every statement on the samples (one trigger per event: a trigger with transition
-- tables takes one event only).
create trigger metric_sample_minutes_insert
after insert on chat_v11.metric_sample
referencing new table as new_samples
for each statement execute function chat_v11.sample_minutes_changed();

create trigger metric_sample_minutes_update
after update on chat_v11.metric_sample
referencing old table as old_samples new table as new_samples
for each statement execute function chat_v11.sample_minutes_changed();

create trigger metric_sample_minutes_delete
after delete on chat_v11.metric_sample
referencing old table as old_samples
for each statement execute function chat_v11.sample_minutes_changed();
