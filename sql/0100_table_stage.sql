-- The ordered stage catalog: traffic share and minimum observation window of each stage.
create table chat_v11.stage (
    stage text not null,
    -- squawk-ignore prefer-bigint-over-int -- ordinal only ranks a handful of stages
    ordinal integer not null,
    traffic_percent numeric(5, 2) not null,
    min_observation interval not null,
    constraint stage_pkey primary key (stage),
    constraint stage_ordinal_unique unique (ordinal),
    constraint stage_name_valid check (stage ~ '^[a-z][a-z0-9_]{0,62}$'),
    constraint stage_traffic_percent_range check (traffic_percent between 0 and 100),
    constraint stage_min_observation_not_negative check (min_observation >= interval '0')
);

comment on table chat_v11.stage is
'Rollout stages in promotion order (ordinal). Change with public.chat_set_v11_stage_settings().';

insert into chat_v11.stage (stage, ordinal, traffic_percent, min_observation) values
('off', 0, 0, interval '0'),
('canary_1', 1, 1, interval '30 minutes'),
('canary_5', 2, 5, interval '30 minutes'),
('canary_25', 3, 25, interval '30 minutes'),
('canary_50', 4, 50, interval '30 minutes'),
('full', 5, 100, interval '30 minutes');
