-- Revision 0008 downgrade: the three reader functions are new; nothing else changed. No data is touched.
-- PART 2
drop function public.chat_get_v11_postmortem(bigint);
drop function public.chat_get_v11_metric_samples(timestamptz, timestamptz);
drop function public.chat_get_v11_metric_rules();
