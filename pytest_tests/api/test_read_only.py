"""Every get function runs inside a READ ONLY transaction (so it can answer on a hot standby)."""

from __future__ import annotations

import pytest

GETS = [
    "select * from public.chat_get_v11_rollout_state()",
    "select * from public.chat_get_v11_rollout_history(50)",
    "select * from public.chat_get_v11_release_gates()",
    "select * from public.chat_get_v11_release_gates(now() - interval '1 hour')",
    "select * from public.chat_get_v11_gate_checks()",
    "select * from public.chat_get_v11_gate_checks(now() - interval '1 hour')",
    "select * from public.chat_verify_v11_history()",
    "select * from public.chat_verify_v11_history_full()",
    "select * from public.chat_get_v11_incidents()",
    "select * from public.chat_get_v11_incident_checklist(1)",
    "select * from public.chat_get_v11_incident_timeline(1)",
    "select * from public.chat_get_v11_metric_rules()",
    "select count(*) from public.chat_get_v11_metric_samples(now() - interval '1 hour', now())",
    "select count(*) from public.chat_get_v11_metric_sources()",
    "select count(*) from public.chat_get_v11_metric_pulls(now() - interval '1 hour', now())",
    "select public.chat_get_v11_postmortem(1)",
    "select count(*) from public.chat_get_v11_active_alerts()",
    "select * from public.chat_get_v11_assignment('user-42')",
    "select * from public.chat_get_v11_assignment_policy()",
    "select count(*) from public.chat_get_v11_approvals()",
    "select * from public.chat_get_v11_progression()",
]


@pytest.mark.parametrize("sql", GETS)
def test_get_function_runs_in_a_read_only_transaction(conn, sql):
    conn.execute("select * from chat_open_v11_incident('P0', 'ACK without receipt on canary')")
    with conn.transaction():
        conn.execute("set transaction read only")
        rows = conn.execute(sql).fetchall()
    assert rows


def test_every_public_get_function_is_stable_and_covered(conn):
    names = {
        r[0]
        for r in conn.execute(
            "select p.proname from pg_proc p where p.pronamespace = 'public'::regnamespace "
            "and p.proname ~ '^chat_(get|verify)_v11_' and p.provolatile = 's'"
        )
    }
    all_gets = {
        r[0]
        for r in conn.execute(
            "select proname from pg_proc where pronamespace = 'public'::regnamespace "
            "and proname ~ '^chat_(get|verify)_v11_'"
        )
    }
    assert names == all_gets
    assert all(any(n in sql for sql in GETS) for n in all_gets)


def test_a_write_function_fails_in_a_read_only_transaction(conn):
    with pytest.raises(Exception) as info:
        with conn.transaction():
            conn.execute("set transaction read only")
            conn.execute("select * from chat_set_v11_rollout_state('off', true, 'kill')")
    assert info.value.diag.sqlstate == "25006"
