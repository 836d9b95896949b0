"""SPEC 4: the four group roles, EXECUTE revoked from PUBLIC, nothing writable but through functions."""

from __future__ import annotations

import pytest

from pytest_tests.support.roles import ADMIN, INGEST, OPERATOR, READER, ROLES, TABLES, as_role

# every API function, a call that is valid for it, and the group roles allowed to run it
API = [
    ("select * from chat_get_v11_rollout_state()", {READER, OPERATOR, ADMIN}),
    ("select * from chat_get_v11_rollout_history(50)", {READER, OPERATOR, ADMIN}),
    ("select * from chat_get_v11_release_gates()", {READER, OPERATOR, ADMIN}),
    ("select * from chat_get_v11_gate_checks()", {READER, OPERATOR, ADMIN}),
    ("select * from chat_get_v11_metric_rules()", {READER, OPERATOR, ADMIN}),
    ("select * from chat_get_v11_metric_samples(now() - interval '1 hour', now())", {READER, OPERATOR, ADMIN}),
    ("select chat_get_v11_postmortem(1)", {READER, OPERATOR, ADMIN}),
    ("select * from chat_verify_v11_history()", {READER, OPERATOR, ADMIN}),
    ("select * from chat_verify_v11_history_full()", {OPERATOR, ADMIN}),
    ("select * from chat_checkpoint_v11_history()", {OPERATOR, ADMIN}),
    ("select * from chat_set_v11_rollout_state('off', false, 'hold')", {OPERATOR}),
    ("select * from chat_lift_v11_freeze('lift')", {OPERATOR}),
    ("select * from chat_set_v11_stage_settings('canary_1', 2, '45 minutes')", {ADMIN}),
    ("select * from chat_set_v11_policy('state_lock_timeout', '\"3 seconds\"')", {ADMIN}),
    ("select * from chat_set_v11_metric_rule('full_state_rate', '{\"factor\": 2}')", {ADMIN}),
    ("select chat_put_v11_metric_samples('[]')", {INGEST}),
    ("select * from chat_get_v11_metric_sources()", {READER, OPERATOR, ADMIN, INGEST}),
    ("select * from chat_get_v11_metric_pulls(now() - interval '1 hour', now())", {READER, OPERATOR, ADMIN, INGEST}),
    ("select * from chat_set_v11_metric_source('full_state_rate', 'canary', null)", {ADMIN}),
    ("select chat_put_v11_metric_pulls('[]')", {INGEST}),
    ("select chat_put_v11_active_alerts('[]')", {INGEST}),
    ("select * from chat_get_v11_active_alerts()", {READER, OPERATOR, ADMIN, INGEST}),
    ("select * from chat_get_v11_assignment('user-42')", {READER, OPERATOR, ADMIN}),
    ("select * from chat_get_v11_assignment_policy()", {READER, OPERATOR, ADMIN}),
    ("select * from chat_set_v11_policy('assignment_salt', '\"chat_v11-2\"')", {ADMIN}),
    ("select chat_put_v11_metric_samples('{}'::text[], '{}', '{}', null, null, null)", {INGEST}),
    ("select * from chat_run_v11_guardrails()", {INGEST}),
    ("select * from chat_run_v11_progression()", {INGEST}),
    ("select * from chat_set_v11_stage_policy('canary_5', '{\"approvals_required\": 1}')", {ADMIN}),
    ("select * from chat_approve_v11_promotion('canary_1', 'four eyes')", {OPERATOR}),
    ("select * from chat_get_v11_approvals()", {READER, OPERATOR, ADMIN}),
    ("select * from chat_get_v11_progression()", {READER, OPERATOR, ADMIN}),
    ("select * from chat_run_v11_maintenance()", {INGEST}),
    ("select * from chat_open_v11_incident('P2', 'schema mismatch on one client')", {OPERATOR}),
    ("select * from chat_get_v11_incidents()", {READER, OPERATOR, ADMIN}),
    ("select * from chat_log_v11_incident(1, 'fact', 'receipts delayed')", {OPERATOR}),
    ("select * from chat_set_v11_incident_role(1, 'IC', 'alice')", {OPERATOR}),
    ("select * from chat_set_v11_incident_severity(1, 'P2', 'still local')", {OPERATOR}),
    ("select * from chat_set_v11_incident_status(1, 'mitigated', 'fallback on')", {OPERATOR}),
    ("select * from chat_snapshot_v11_incident(1)", {OPERATOR}),
    ("select * from chat_put_v11_postmortem(1, '{}')", {OPERATOR}),
    ("select * from chat_get_v11_incident_checklist(1)", {READER, OPERATOR, ADMIN}),
    ("select * from chat_get_v11_incident_timeline(1)", {READER, OPERATOR, ADMIN}),
    ("select * from chat_close_v11_incident(1, 'done')", {OPERATOR}),
]
# The one API function that is SECURITY INVOKER (the hot read path, docs/design.md "The hot read path"): an
# inlinable language sql function over the read-only view chat_v11_read.rollout_state (test_read_path.py).
INVOKER_API = {"chat_get_v11_rollout_state"}
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("sql,allowed", API, ids=[a[0].split("(")[0].split()[-1] for a in API])
def test_execute_matrix(conn, role, sql, allowed):
    conn.execute("select chat_open_v11_incident('P2', 'a P2 incident for the matrix')")
    result = as_role(conn, role, sql)
    if role in allowed:
        assert result != "42501"  # it ran (or a guard refused with a project SQLSTATE)
        assert result is None or result.startswith("RO")
    else:
        assert result == "42501"


def test_every_api_function_is_in_the_matrix_and_not_executable_by_public(conn):
    rows = conn.execute(
        "select p.oid::regprocedure::text, p.proname, "
        "has_function_privilege('public', p.oid, 'execute'), p.prosecdef, p.proconfig, "
        "obj_description(p.oid, 'pg_proc') "
        "from pg_proc p where p.pronamespace = 'public'::regnamespace and p.proname ~ '^chat_[a-z]+_v11_'"
    ).fetchall()
    names = {r[1] for r in rows}
    assert names == {sql.split("(")[0].split()[-1] for sql, _ in API}
    for signature, name, public_exec, secdef, config, comment in rows:
        assert public_exec is False, signature
        assert comment, signature
        if name in INVOKER_API:  # the documented exception: pytest_tests/security/test_read_path.py
            assert secdef is False and config is None, signature
            continue
        assert secdef is True, signature
        assert config == ["search_path=pg_catalog, chat_v11, pg_temp"], signature


def test_internal_functions_are_not_executable_by_public(conn):
    rows = conn.execute(
        "select p.oid::regprocedure::text from pg_proc p where p.pronamespace = 'chat_v11'::regnamespace "
        "and has_function_privilege('public', p.oid, 'execute')"
    ).fetchall()
    assert rows == []


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize(
    "statement",
    [
        "select * from chat_v11.{t}",
        "insert into chat_v11.{t} default values",
        "update chat_v11.{t} set {c} = {c}",
        "delete from chat_v11.{t}",
        "truncate chat_v11.{t}",
    ],
    ids=["select", "insert", "update", "delete", "truncate"],
)
def test_base_tables_grant_nothing_to_any_role(conn, role, table, statement):
    column = conn.execute(
        "select attname from pg_attribute where attrelid = %s::regclass and attnum = 1", (f"chat_v11.{table}",)
    ).fetchone()[0]
    before = conn.execute(f"select count(*) from chat_v11.{table}").fetchone()[0]
    assert as_role(conn, role, statement.format(t=table, c=column)) == "42501"
    assert conn.execute(f"select count(*) from chat_v11.{table}").fetchone()[0] == before


def test_group_roles_are_nologin_and_operators_and_admins_read(conn):
    rows = dict(
        conn.execute(
            "select rolname, rolcanlogin from pg_roles where rolname in (%s, %s, %s, %s)",
            (READER, OPERATOR, INGEST, ADMIN),
        ).fetchall()
    )
    assert rows == {READER: False, OPERATOR: False, INGEST: False, ADMIN: False}
    member = "select pg_has_role(%s, %s, 'member')"
    assert conn.execute(member, (OPERATOR, READER)).fetchone()[0]
    assert conn.execute(member, (ADMIN, READER)).fetchone()[0]
    assert not conn.execute(member, (INGEST, READER)).fetchone()[0]
