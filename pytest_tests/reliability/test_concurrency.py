"""SPEC 4.6 concurrency: calls serialize on the state row, never lose an update, never hang."""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import datetime

import psycopg
import pytest

from pytest_tests.support.calls import arrange_state, history, state


def test_16_concurrent_clients_x_100_calls_keep_versions_contiguous(conn, db_url):
    arrange_state(conn, "promote", "canary_5", False, False)
    start_version = state(conn)["version"]
    accepted = []
    refusals = []
    errors = []

    def client(seed: int) -> None:
        rng = random.Random(seed)
        ok = 0
        try:
            with psycopg.connect(db_url, autocommit=True) as c:
                for i in range(100):
                    call = rng.choice(
                        [("canary_1", True, "kill"), ("canary_5", False, "hold or resume"), ("off", False, "down")]
                    )
                    try:
                        c.execute("select * from chat_set_v11_rollout_state(%s, %s, %s)", (*call[:2], f"{call[2]} {i}"))
                        ok += 1
                    except psycopg.Error as exc:
                        refusals.append(exc.diag.sqlstate)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        accepted.append(ok)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not errors
    # only guard refusals: resume without P0 exit criteria (RO007), resume/promote upwards (RO008, RO003/4/5),
    # a call whose meaning changed while it waited (RO017)
    assert set(refusals) <= {"RO003", "RO004", "RO005", "RO007", "RO008", "RO017"}, set(refusals)
    assert sum(accepted) + len(refusals) == 1600
    final = state(conn)
    assert final["version"] == start_version + sum(accepted)
    versions = sorted(r["version"] for r in history(conn, 100000))
    assert versions == list(range(1, final["version"] + 1))
    assert conn.execute("select ok from chat_verify_v11_history()").fetchone()[0] is True


def test_a_call_blocked_by_a_held_state_lock_fails_within_the_lock_timeout_naming_the_blocker(conn, db_url):
    conn.execute("select chat_set_v11_policy('state_lock_timeout', '\"300 milliseconds\"')")
    before = state(conn)
    with psycopg.connect(db_url) as blocker:
        blocker.execute("set application_name = 'stuck-operator'")
        blocker.execute("select * from chat_set_v11_rollout_state('off', false, 'hold, then forgot to commit')")
        blocker_pid = blocker.info.backend_pid
        for kill_switch in (True, False):
            started = time.monotonic()
            with pytest.raises(psycopg.Error) as info:
                conn.execute("select * from chat_set_v11_rollout_state('off', %s, 'incident P0')", (kill_switch,))
            elapsed = time.monotonic() - started
            err = info.value
            assert err.diag.sqlstate == "RO010"
            assert f"pid {blocker_pid}" in err.diag.message_detail
            assert "stuck-operator" in err.diag.message_detail
            assert "pg_terminate_backend" in err.diag.message_hint
            assert elapsed < 5
        blocker.rollback()
    assert state(conn) == before
    # the documented remedy: once the blocker is gone, the kill switch goes through
    assert conn.execute("select kill_switch from chat_set_v11_rollout_state('off', true, 'kill')").fetchone()[0]


def test_the_operator_remedy_terminating_an_idle_in_transaction_blocker_works(conn, db_url):
    conn.execute("select chat_set_v11_policy('state_lock_timeout', '\"200 milliseconds\"')")
    blocker = psycopg.connect(db_url)
    blocker.execute("select * from chat_v11.rollout_state for update")
    with pytest.raises(psycopg.Error) as info:
        conn.execute("select * from chat_set_v11_rollout_state('off', true, 'kill')")
    detail = info.value.diag.message_detail
    pid = int(detail.split("pid ")[1].split(" ")[0])
    assert pid == blocker.info.backend_pid
    assert conn.execute("select pg_terminate_backend(%s)", (pid,)).fetchone()[0]
    new = conn.execute("select kill_switch, version from chat_set_v11_rollout_state('off', true, 'kill')").fetchone()
    assert new == (True, 2)
    blocker.close()


def test_a_table_lock_blocker_is_named_with_its_lock_mode(conn, db_url):
    conn.execute("select chat_set_v11_policy('state_lock_timeout', '\"200 milliseconds\"')")
    with psycopg.connect(db_url) as blocker:
        blocker.execute("lock table chat_v11.rollout_state in access exclusive mode")
        with pytest.raises(psycopg.Error) as info:
            conn.execute("select * from chat_set_v11_rollout_state('off', true, 'kill')")
        assert info.value.diag.sqlstate == "RO010"
        assert f"pid {blocker.info.backend_pid} (holds AccessExclusiveLock" in info.value.diag.message_detail
        blocker.rollback()


def test_a_listener_receives_the_json_payload(conn, db_url):
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("listen chat_v11_rollout")
        conn.execute("set chat.actor = 'oncall-bot'")
        new = conn.execute("select version, changed_at from chat_set_v11_rollout_state('off', true, 'kill')").fetchone()
        received = list(listener.notifies(timeout=5, stop_after=1))
    assert len(received) == 1
    assert received[0].channel == "chat_v11_rollout"
    payload = json.loads(received[0].payload)
    assert payload["version"] == new[0]
    assert payload["action"] == "kill"
    assert payload["stage"] == "off"
    assert payload["kill_switch"] is True
    assert payload["promotion_frozen"] is True
    assert payload["actor"] == "oncall-bot"
    assert datetime.fromisoformat(payload["changed_at"]) == new[1]


def test_a_refused_call_sends_no_notification(conn, db_url):
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("listen chat_v11_rollout")
        with pytest.raises(psycopg.Error):
            conn.execute("select * from chat_set_v11_rollout_state('canary_5', false, 'skip')")
        assert list(listener.notifies(timeout=0.3)) == []
