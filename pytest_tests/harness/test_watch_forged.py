"""Issue 13: `chat-rollout watch` treats a notification as a hint; a forged one changes nothing it prints.

Any login can pg_notify('chat_v11_rollout', ...) without a single grant (chat_test_nobody). The watcher re-reads
the state and the history and prints only what they confirm; the forgery is flagged "unverified notification ignored".
"""

from __future__ import annotations

import json
import threading

import psycopg
import pytest

from pytest_tests.support.calls import invoke, set_state, wait_for_listener

FORGED_RESUME = '{"version":3,"action":"resume","stage":"full","kill_switch":false}'


def run_watch(url: str, count: int) -> tuple[threading.Thread, dict]:
    outcome: dict = {}
    watcher = threading.Thread(target=lambda: outcome.update(result=invoke(["watch", "--count", str(count)], url)),
                               daemon=True)
    watcher.start()
    return watcher, outcome


def test_a_forged_notification_from_a_login_without_grants_is_flagged_and_a_real_change_printed(fresh_db):
    dbname, url = fresh_db
    nobody_url = psycopg.conninfo.make_conninfo(url, user="chat_test_nobody")
    watcher, outcome = run_watch(url, 1)
    with psycopg.connect(url, autocommit=True) as conn:
        wait_for_listener(conn, dbname)
        with psycopg.connect(nobody_url, autocommit=True) as nobody:
            nobody.execute("select pg_notify('chat_v11_rollout', %s)", (FORGED_RESUME,))
            # a replay of a plausible next version with a made-up hash is forged too
            nobody.execute("select pg_notify('chat_v11_rollout', %s)", (json.dumps(
                {"version": 2, "action": "kill", "stage": "off", "kill_switch": True, "hash": "0" * 64}),))
            nobody.execute("select pg_notify('chat_v11_rollout', 'not json')")
        set_state(conn, "off", True, "kill switch")
        watcher.join(timeout=15)
        if watcher.is_alive():
            pytest.fail("chat-rollout watch did not print the real change")

    result = outcome["result"]
    assert result.exit_code == 0, result.output
    changes = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    history_hash = None
    with psycopg.connect(url, autocommit=True) as conn:
        history_hash = conn.execute("select hash from chat_v11.rollout_history where version = 2").fetchone()[0]
    assert [(c["version"], c["action"], c["stage"], c["kill_switch"], c["hash"]) for c in changes] == [
        (2, "kill", "off", True, history_hash),
    ]
    ignored = [line for line in result.output.splitlines() if line.startswith("unverified notification ignored")]
    assert len(ignored) == 3, result.output
    assert "resume" not in "".join(line for line in result.output.splitlines() if line.startswith("{"))


def test_a_replayed_real_notification_is_ignored(fresh_db):
    dbname, url = fresh_db
    watcher, outcome = run_watch(url, 2)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("listen chat_v11_rollout")
        wait_for_listener(conn, dbname)
        set_state(conn, "off", False, "hold")
        real = next(conn.notifies(stop_after=1)).payload
        conn.execute("select pg_notify('chat_v11_rollout', %s)", (real,))  # replayed: not newer
        set_state(conn, "off", True, "kill switch")
        watcher.join(timeout=15)
        if watcher.is_alive():
            pytest.fail("chat-rollout watch did not print the two real changes")
    output = outcome["result"].output
    changes = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    # the replay never shows as a second change 2 (it is flagged, or it is the one accepted if it came first)
    assert [c["version"] for c in changes] == [2, 3], output
    assert output.count("unverified notification ignored") <= 1, output
