"""SPEC 4.6.1: stage settings and policies, validated, every change audited with actor and time."""

from __future__ import annotations

import psycopg
import pytest

from pytest_tests.support.calls import refused


def audit(conn) -> list[tuple]:
    return conn.execute(
        "select changed_by, actor, target, target_key, old_value, new_value from chat_v11.config_change "
        "order by change_id"
    ).fetchall()


def test_stage_settings_change_is_applied_and_audited(conn):
    conn.execute("set chat.actor = 'release-manager'")
    row = conn.execute("select * from chat_set_v11_stage_settings('canary_5', 7.5, '45 minutes')").fetchone()
    assert row[0] == "canary_5" and float(row[2]) == 7.5 and str(row[3]) == "0:45:00"
    (entry,) = audit(conn)
    assert entry[:4] == ("postgres", "release-manager", "stage", "canary_5")
    assert entry[5] == {"traffic_percent": 7.5, "min_observation": "00:45:00"}


def test_stage_settings_null_keeps_the_current_value(conn):
    row = conn.execute("select * from chat_set_v11_stage_settings('canary_25', null, '0')").fetchone()
    assert float(row[2]) == 25 and str(row[3]) == "0:00:00"


@pytest.mark.parametrize(
    "args,sqlstate",
    [
        (("canary_5", 101, None), "RO015"),
        (("canary_5", -1, None), "RO015"),
        (("canary_5", float("nan"), None), "RO015"),
        (("canary_5", 0.5, None), "RO015"),  # below canary_1
        (("canary_5", 30, None), "RO015"),  # above canary_25
        (("off", 1, None), "RO015"),
        (("canary_5", None, "-1 minute"), "RO015"),
        (("canary_7", 7, None), "RO002"),
        ((None, 7, None), "RO002"),
    ],
)
def test_invalid_stage_settings_are_refused_and_change_nothing(conn, args, sqlstate):
    before = conn.execute("select * from chat_v11.stage order by ordinal").fetchall()
    err = refused(conn, "select * from chat_set_v11_stage_settings(%s, %s::numeric, %s::interval)", args)
    assert err.diag.sqlstate == sqlstate
    assert err.diag.message_hint
    assert conn.execute("select * from chat_v11.stage order by ordinal").fetchall() == before
    assert audit(conn) == []


@pytest.mark.parametrize(
    "key,value",
    [("auto_kill", "false"), ("p0_exit_window", '"45 minutes"'), ("state_lock_timeout", '"500 ms"'),
     ("retention", '"14 days"'), ("alert_source", '{"required": true, "max_age": "5 minutes"}')],
)
def test_policy_change_is_applied_and_audited(conn, key, value):
    row = conn.execute("select key, value, changed_by from chat_set_v11_policy(%s, %s::jsonb)", (key, value)).fetchone()
    assert row[0] == key and row[2] == "postgres"
    (entry,) = audit(conn)
    assert entry[2:4] == ("policy", key)
    assert entry[5] == row[1]


@pytest.mark.parametrize(
    "key,value",
    [
        ("auto_kill", '"yes"'),
        ("auto_kill", "null"),
        ("p0_exit_window", '"10 minutes"'),
        ("p0_exit_window", '"2 hours"'),
        ("p0_exit_window", "30"),
        ("state_lock_timeout", '"0 seconds"'),
        ("state_lock_timeout", '"5 minutes"'),
        ("state_lock_timeout", '"soon"'),
        ("retention", '"1 hour"'),
        ("alert_source", "true"),
        ("alert_source", '"2 minutes"'),
        ("alert_source", '{"required": true}'),
        ("alert_source", '{"required": "yes", "max_age": "2 minutes"}'),
        ("alert_source", '{"required": true, "max_age": "29 seconds"}'),
        ("alert_source", '{"required": true, "max_age": "61 minutes"}'),
        ("alert_source", '{"required": true, "max_age": "soon"}'),
        ("alert_source", '{"required": true, "max_age": "2 minutes", "extra": 1}'),
        ("unknown_policy", "true"),
        (None, "true"),
    ],
)
def test_invalid_policy_values_are_refused_and_change_nothing(conn, key, value):
    before = conn.execute("select key, value from chat_v11.policy order by key").fetchall()
    err = refused(conn, "select * from chat_set_v11_policy(%s, %s::jsonb)", (key, value))
    assert err.diag.sqlstate == "RO014"
    assert err.diag.message_detail and err.diag.message_hint
    assert conn.execute("select key, value from chat_v11.policy order by key").fetchall() == before
    assert audit(conn) == []


def test_a_null_policy_value_is_refused(conn):
    with pytest.raises(psycopg.Error) as info:
        conn.execute("select * from chat_set_v11_policy('auto_kill', null)")
    assert info.value.diag.sqlstate == "RO014"
