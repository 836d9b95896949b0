"""SPEC 8: chat_get_v11_assignment(p_user_key) and the policy assignment_salt.

The vectors (docs/assignment-vectors.json) and the Python client are checked in pytest_tests/client; this module
proves the SQL side's own rules: the rule itself, the kill switch, who may read it, the salt's guard (RO040, the
state row taken first, nothing written on a refusal), the announcement of a new salt, and the audit.
"""

from __future__ import annotations

import json
import threading

import psycopg
import pytest
import sqlalchemy.exc

from chat_rollout import migrate
from chat_rollout.client.assignment import bucket as py_bucket
from pytest_tests.support.calls import arrange_state, login, refused, state
from pytest_tests.support.databases import fingerprint
from pytest_tests.support.migrations import alembic_version, psycopg_error

KEYS = ["alice", "", "пользователь-7", "用户", "🙂", " padded ", "x" * 5000]


def assignment(conn: psycopg.Connection, key: str) -> dict:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute("select * from chat_get_v11_assignment(%s)", (key,)).fetchone()


def test_columns_and_the_rule_at_every_default_stage(conn):
    stages = conn.execute("select stage, traffic_percent from chat_v11.stage order by ordinal").fetchall()
    for stage, percent in stages:
        arrange_state(conn, "promote", stage, False, False)
        for key in KEYS:
            row = assignment(conn, key)
            assert row["bucket"] == py_bucket("chat_v11", key)
            assert row["in_canary"] == (row["bucket"] < percent * 100)
            assert (row["stage"], row["traffic_percent"], row["kill_switch"]) == (stage, percent, False)
            assert row["version"] == state(conn)["version"]
    # at full everyone is in, at off nobody
    assert all(assignment(conn, k)["in_canary"] for k in KEYS)


def test_the_kill_switch_takes_everyone_out_and_resume_brings_the_same_users_back(conn):
    arrange_state(conn, "promote", "canary_50", False, False)
    before = {k: assignment(conn, k)["in_canary"] for k in KEYS}
    assert any(before.values()) and not all(before.values())
    conn.execute("select * from chat_set_v11_rollout_state('canary_50', true, 'kill: P0 on canary')")
    killed = [assignment(conn, k) for k in KEYS]
    assert not any(r["in_canary"] for r in killed) and all(r["kill_switch"] for r in killed)
    arrange_state(conn, "resume", "canary_50", False, True)
    assert {k: assignment(conn, k)["in_canary"] for k in KEYS} == before


def test_a_reader_login_reads_assignments_and_the_salt_but_cannot_set_it(db_url):
    with login(db_url, "chat_test_reader") as reader:
        assert assignment(reader, "alice")["bucket"] == py_bucket("chat_v11", "alice")
        assert reader.execute("select salt from chat_get_v11_assignment_policy()").fetchone() == ("chat_v11",)
        error = refused(reader, "select * from chat_set_v11_policy('assignment_salt', '\"other\"')")
        assert error.sqlstate == "42501"


def test_a_new_salt_at_stage_off_is_used_announced_and_audited(conn, db_url):
    with login(db_url, "chat_test_admin") as admin, login(db_url, "chat_test_reader") as listener:
        listener.execute("listen chat_v11_assignment")
        notices = []
        admin.add_notice_handler(lambda d: notices.append(d.message_primary))
        row = admin.execute(
            "select key, value from chat_set_v11_policy('assignment_salt', '\"spring-2027\"')"
        ).fetchone()
        assert row == ("assignment_salt", "spring-2027")
        assert any("assignment salt changed to 'spring-2027'" in n for n in notices)
        heard = next(listener.notifies(timeout=5, stop_after=1))
        assert heard.channel == "chat_v11_assignment"
        assert json.loads(heard.payload)["salt"] == "spring-2027"
    assert assignment(conn, "alice")["bucket"] == py_bucket("spring-2027", "alice")
    assert conn.execute("select salt, changed_by from chat_get_v11_assignment_policy()").fetchone() == (
        "spring-2027",
        "chat_test_admin",
    )
    audit = conn.execute(
        "select target, target_key, old_value, new_value from chat_v11.config_change "
        "where target_key = 'assignment_salt'"
    ).fetchall()
    assert audit == [("policy", "assignment_salt", "chat_v11", "spring-2027")]


@pytest.mark.parametrize("stage,killed", [("canary_1", False), ("canary_25", True), ("full", False)])
def test_the_salt_cannot_change_while_traffic_is_in_the_canary(conn, db_url, stage, killed):
    arrange_state(conn, "promote", stage, killed, killed)
    before = fingerprint(conn)
    with login(db_url, "chat_test_admin") as admin:
        error = refused(admin, "select * from chat_set_v11_policy('assignment_salt', '\"reshuffle\"')")
    assert error.sqlstate == "RO040"
    assert error.diag.message_primary == "the assignment salt cannot change while traffic is in the canary"
    assert f"stage {stage}" in error.diag.message_detail
    assert "stage off" in error.diag.message_hint and "nothing was changed" in error.diag.message_hint
    assert fingerprint(conn) == before
    # the same value is no change: accepted (recorded), so an idempotent config push does not fail mid-rollout
    with login(db_url, "chat_test_admin") as admin:
        assert admin.execute("select value from chat_set_v11_policy('assignment_salt', '\"chat_v11\"')").fetchone() == (
            "chat_v11",
        )


def test_a_salt_change_waits_for_a_promotion_in_flight_and_then_refuses(conn, db_url):
    """The salt call takes the state row first: a promotion that commits while it waits is seen, never slipped."""
    conn.execute("select * from chat_set_v11_policy('state_lock_timeout', '\"10 seconds\"')")
    promoter = psycopg.connect(db_url)
    promoter.execute("select chat_v11.lock_state()")
    promoter.execute("select chat_v11.apply_transition('promote', 'canary_1', false, false, 'race', null, null, 'x')")
    result: dict = {}

    def change_salt():
        with login(db_url, "chat_test_admin") as admin:
            try:
                admin.execute("select * from chat_set_v11_policy('assignment_salt', '\"late\"')")
                result["outcome"] = "accepted"
            except psycopg.Error as exc:
                result["outcome"] = exc.sqlstate

    worker = threading.Thread(target=change_salt)
    worker.start()
    worker.join(1.0)
    assert worker.is_alive(), "the salt change must wait for the state row"
    promoter.commit()
    promoter.close()
    worker.join(10)
    assert result["outcome"] == "RO040"
    assert conn.execute("select salt from chat_get_v11_assignment_policy()").fetchone() == ("chat_v11",)


def test_the_0011_downgrade_guards_a_changed_salt(empty_db):
    _, url = empty_db
    migrate.upgrade(url, "0011")
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("select * from chat_set_v11_policy('assignment_salt', '\"spring-2027\"')")
    with pytest.raises((psycopg.Error, sqlalchemy.exc.DBAPIError)) as info:
        migrate.downgrade(url, "0010")
    error = psycopg_error(info.value)
    assert error.sqlstate == "RO013" and "spring-2027" in error.diag.message_detail
    assert alembic_version(url) == ["0011"]
    migrate.downgrade(url, "0010", drop_data=True)
    assert alembic_version(url) == ["0010"]
    with psycopg.connect(url, autocommit=True) as db:
        assert db.execute("select to_regprocedure('chat_get_v11_assignment(text)')").fetchone()[0] is None
        assert db.execute("select to_regclass('chat_v11.assignment_policy')").fetchone()[0] is None
        # the 0010 policy function is back and knows no salt
        assert refused(db, "select * from chat_set_v11_policy('assignment_salt', '\"x\"')").sqlstate == "RO014"
