"""SPEC 4.7: chat_run_v11_guardrails(): idempotent, stale P0 data freezes, a failing P0 check kills; retention is
chat_run_v11_maintenance()'s work (issue 12), the guardrails leave the samples alone."""

from __future__ import annotations

from datetime import timedelta

from chat_rollout import scenarios
from pytest_tests.support.calls import arrange_state, history, state
from pytest_tests.support.samples import healthy, put, sample


def run(conn) -> list[tuple]:
    return conn.execute("select action, version, detail from chat_run_v11_guardrails()").fetchall()


def test_with_fresh_healthy_data_the_guardrails_do_nothing(conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    healthy(conn, 20)
    before = state(conn)
    assert run(conn) == []
    assert state(conn) == before


def test_stale_p0_data_freezes_promotion_once(conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    healthy(conn, 20, end_offset=timedelta(minutes=-5))
    actions = run(conn)
    assert [a[0] for a in actions] == ["hold"]
    s = state(conn)
    assert (s["stage"], s["kill_switch"], s["promotion_frozen"]) == ("canary_1", False, True)
    last = history(conn, 1)[0]
    assert (last["action"], last["actor"]) == ("hold", "guardrail")
    assert "stale" in last["reason"]
    assert run(conn) == []  # idempotent: already frozen
    assert state(conn)["version"] == s["version"]


def test_stage_off_is_not_frozen_for_missing_data(conn):
    assert run(conn) == []
    assert state(conn)["promotion_frozen"] is False


def test_a_failing_p0_check_the_writer_did_not_act_on_kills(conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    conn.execute("select chat_set_v11_policy('auto_kill', 'false')")
    put(conn, [sample("read_rollback_detected_rate", "canary", scenarios.anchor_now(), 1, 100)])
    assert state(conn)["kill_switch"] is False
    conn.execute("select chat_set_v11_policy('auto_kill', 'true')")
    actions = run(conn)
    assert [a[0] for a in actions] == ["auto_kill"]
    assert state(conn)["kill_switch"] is True
    assert history(conn, 1)[0]["actor"] == "guardrail"
    assert run(conn) == []  # idempotent


def test_retention_removes_samples_older_than_the_policy(conn):
    conn.execute("select chat_set_v11_policy('retention', '\"1 day\"')")
    old = scenarios.anchor_now() - timedelta(days=2)
    put(
        conn,
        [
            sample("full_state_rate", "control", old),
            sample("full_state_rate", "control", old + timedelta(days=1, hours=1)),
        ],
    )
    assert run(conn) == []
    assert conn.execute("select count(*) from chat_v11.metric_sample").fetchone()[0] == 2
    actions = conn.execute("select action from chat_run_v11_maintenance()").fetchall()
    assert [a[0] for a in actions] == ["prune"]
    assert conn.execute("select count(*) from chat_v11.metric_sample").fetchone()[0] == 1


def test_the_ingest_role_runs_the_guardrails(conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    with conn.transaction():
        conn.execute("set local role chat_rollout_ingest")
        assert [a[0] for a in run(conn)] == ["hold"]
