-- The maintenance lock: one row per maintenance job. public.chat_run_v11_maintenance() takes its row FOR UPDATE SKIP
-- LOCKED; the table grants nothing to anyone, so only the project's own functions (and the owner) can hold it. An
-- advisory lock would be open to any login of the database (issue 12).
create table chat_v11.maintenance (
    job text not null,
    description text not null,
    constraint maintenance_pkey primary key (job),
    constraint maintenance_job_known check (job in ('metric_sample'))
);

comment on table chat_v11.maintenance is
'Row locks of the maintenance jobs (public.chat_run_v11_maintenance()); never written after install.';

insert into chat_v11.maintenance (job, description) values
(
    'metric_sample',
    'Daily partitions of chat_v11.metric_sample created ahead and dropped past the retention policy.'
);
