-- The most recent gate evaluation of the rollout, written where new evidence arrives: by ingestion after each batch
-- (chat_v11.put_samples, through chat_v11.remember_gates; readers cannot write, and a guardrails run must leave the
-- database as it found it when it has nothing to do). One row. The kill reads it instead
-- of evaluating the gates before its commit (SPEC 4.3: a kill is never guarded, its gate_snapshot may be the most
-- recent evaluation, stamped with its own evaluated_at). Derived data: losing it costs one evaluation.
create table chat_v11.gate_evaluation (
    id boolean not null default true,
    evaluated_at timestamptz not null,
    evaluated_by text not null,
    stage text not null,
    kill_switch boolean not null,
    state_version bigint not null,
    snapshot jsonb not null, -- noqa: RF04
    constraint gate_evaluation_pkey primary key (id),
    constraint gate_evaluation_one_row check (id),
    constraint gate_evaluation_by_valid check (evaluated_by in ('ingestion'))
);

comment on table chat_v11.gate_evaluation is
'The most recent gate evaluation (one row): when, by whom (ingestion), for which state (stage, kill '
'switch, version) and the snapshot a history row would carry. A kill records it as its gate_snapshot when it was '
'made for the stage and kill switch the kill stops and is at most a minute old.';
