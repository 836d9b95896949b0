-- Downgrade of revision 0005, fast ingestion. Nothing to do before the restores; no table, view, column or data
-- is touched (the change is function bodies: chat_v11.put_samples and public.chat_put_v11_metric_samples(jsonb),
-- restored to their 0004 text by the generated restores, plus one new function).
-- PART 2 (after the restores: chat_v11.put_samples has its 0004 body back, which does not call it):
drop function chat_v11.refuse_samples(text[], text[], timestamptz[], bigint[], bigint[], double precision[], timestamptz);
